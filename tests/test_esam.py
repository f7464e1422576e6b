"""ESAM (sam_variant='esam'): the step against NumPy on softmax regression
(the ascent on the tensors the mask keeps, rescaled by 1/beta; the second
gradient on the examples whose loss rose most), and the mask's rate."""

import math

import jax
import numpy as np
import pytest

import sam
from sam import esam
from tests import variant_harness as harness


@pytest.mark.parametrize('beta,gamma', [(1.0, 0.5), (0.6, 0.5), (0.5, 1.0)])
def test_esam_descends_on_the_sharpest_examples_at_the_masked_ascent(
    beta, gamma
):
  problem = harness.LinearSoftmax(seed=1)
  config = harness.config_for(
      'esam', rho=0.3, sam_esam_beta=beta, sam_esam_gamma=gamma
  )
  state = jax.random.key_data(jax.random.key(7))
  params = problem.params()
  result = sam.get('esam').gradient(
      problem.oracle(config, params, state=state, step=3)
  )

  # The mask esam draws at this step (its rate is tested below).
  key = jax.random.fold_in(jax.random.wrap_key_data(state), 3)
  kept = esam.tensor_mask(params, key, beta)['Dense_0']
  d_kernel, d_bias = problem.np_gradient(problem.kernel, problem.bias)
  d_kernel, d_bias = d_kernel * kept['kernel'], d_bias * kept['bias']
  norm = np.sqrt(np.sum(d_kernel**2) + np.sum(d_bias**2))
  kernel = problem.kernel + 0.3 / beta * d_kernel / norm
  bias = problem.bias + 0.3 / beta * d_bias / norm
  rises = problem.np_losses(kernel, bias) - problem.np_losses(
      problem.kernel, problem.bias
  )
  count = math.ceil(gamma * len(rises))
  rows = np.sort(np.argsort(-rises)[:count])
  expected_kernel, expected_bias = problem.np_gradient(kernel, bias, rows)
  descent = result.descent['Dense_0']
  np.testing.assert_allclose(descent['kernel'], expected_kernel, rtol=1e-4)
  np.testing.assert_allclose(descent['bias'], expected_bias, rtol=1e-4)


def test_the_mask_keeps_each_tensor_with_probability_beta():
  params = {f'layer_{i}': np.zeros(3, np.float32) for i in range(20)}
  kept = [
      np.mean(jax.tree.leaves(esam.tensor_mask(params, k, 0.3)))
      for k in jax.random.split(jax.random.key(0), 500)
  ]
  assert np.mean(kept) == pytest.approx(0.3, abs=0.02)
