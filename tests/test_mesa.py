"""MESA (sam_variant='mesa'): four steps of SGD with its gradient against
NumPy on softmax regression (the teacher a moving average of the weights,
the KL term's gradient derived by hand), and a plain gradient before the
start epoch."""

import jax
import numpy as np
import pytest

import sam
from tests import variant_harness as harness


def by_hand(problem, lam, temperature, decay, lr, num_steps):
  kernel, bias = problem.kernel.copy(), problem.bias.copy()
  teacher = (kernel.copy(), bias.copy())
  path = []
  for _ in range(num_steps):
    teacher = (
        decay * teacher[0] + (1 - decay) * kernel,
        decay * teacher[1] + (1 - decay) * bias,
    )
    q = problem.probabilities(
        (problem.x @ teacher[0] + teacher[1]) / temperature
    )
    p = problem.probabilities((problem.x @ kernel + bias) / temperature)
    # d/dz of lambda T^2 KL(q || softmax(z / T)) = lambda T (p - q).
    d_kernel, d_bias = problem.np_gradient(
        kernel, bias, extra=lam * temperature * (p - q)
    )
    kernel, bias = kernel - lr * d_kernel, bias - lr * d_bias
    path.append(np.concatenate([kernel.ravel(), bias]))
  return np.array(path)


def with_variant(problem, config, num_steps, lr):
  variant = sam.get('mesa')
  params = problem.params()
  state, path = variant.init(params, config, None), []
  for step in range(num_steps):
    result = variant.gradient(problem.oracle(config, params, state, step))
    params = jax.tree.map(lambda w, g: w - lr * g, params, result.descent)
    state = result.state
    layer = params['Dense_0']
    path.append(
        np.concatenate([np.ravel(layer['kernel']), np.asarray(layer['bias'])])
    )
  return np.array(path)


@pytest.mark.parametrize(
    'lam,temperature,decay', [(0.8, 5.0, 0.5), (2.0, 2.0, 0.9)]
)
def test_mesa_steps_match_the_distillation_by_hand(lam, temperature, decay):
  problem = harness.LinearSoftmax(seed=2)
  config = harness.config_for(
      'mesa',
      sam_mesa_lambda=lam,
      sam_mesa_temperature=temperature,
      sam_mesa_decay=decay,
      sam_mesa_start_epoch=0,
  )
  np.testing.assert_allclose(
      with_variant(problem, config, 4, lr=0.5),
      by_hand(problem, lam, temperature, decay, 0.5, 4),
      rtol=1e-4,
      atol=1e-6,
  )


def test_before_the_start_epoch_the_step_is_plain():
  problem = harness.LinearSoftmax(seed=3)
  config = harness.config_for('mesa', sam_mesa_start_epoch=2)
  # The harness's epochs have 10 steps: step 19 is in epoch 1.
  result = sam.get('mesa').gradient(
      problem.oracle(config, problem.params(), problem.params(), step=19)
  )
  d_kernel, d_bias = problem.np_gradient(problem.kernel, problem.bias)
  np.testing.assert_allclose(
      result.descent['Dense_0']['kernel'], d_kernel, rtol=1e-5
  )
  np.testing.assert_allclose(
      result.descent['Dense_0']['bias'], d_bias, rtol=1e-5
  )
