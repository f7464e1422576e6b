"""Random weight perturbation (sam_variant='rwp'): the noise has the
per-filter scale the paper prescribes (a NumPy estimate over many draws),
the descent is the stated mixture, and the noise is a function of the
seed and the step."""

import jax
import jax.numpy as jnp
import numpy as np

import sam
from sam import rwp
from tests import variant_harness as harness


def test_the_noise_scales_with_each_output_filter():
  rng = np.random.default_rng(0)
  kernel = rng.standard_normal((6, 4)) * np.array([0.1, 1.0, 3.0, 10.0])
  bias = rng.standard_normal(5)
  params = {'kernel': jnp.asarray(kernel), 'bias': jnp.asarray(bias)}
  draws = jax.vmap(lambda k: rwp.noise(params, k, 0.01))(
      jax.random.split(jax.random.key(0), 4000)
  )
  # Each output filter (column) has std 0.01 * its norm; the bias, 0.01 *
  # the vector's norm.
  np.testing.assert_allclose(
      np.std(np.asarray(draws['kernel']), axis=(0, 1)),
      0.01 * np.linalg.norm(kernel, axis=0),
      rtol=0.03,
  )
  np.testing.assert_allclose(
      np.std(np.asarray(draws['bias'])), 0.01 * np.linalg.norm(bias), rtol=0.03
  )
  assert abs(float(np.mean(np.asarray(draws['kernel'])))) < 1e-3


def test_rwp_descends_with_the_mixture_at_its_noise():
  problem = harness.Quadratic(seed=10)
  config = harness.config_for('rwp', sam_rwp_sigma=0.3, sam_rwp_lambda=0.25)
  state = harness.initial_state(problem, config, seed=1)
  result = sam.get('rwp').gradient(
      harness.oracle(problem, config, problem.w, state, step=4)
  )
  key = jax.random.fold_in(jax.random.wrap_key_data(state), 4)
  e = problem.flat(rwp.noise(problem.tree(problem.w), key, 0.3))
  expected = 0.25 * problem.gradient(problem.w + e) + 0.75 * problem.gradient(
      problem.w
  )
  np.testing.assert_allclose(problem.flat(result.descent), expected, rtol=1e-5)
  # Another step draws other noise; the same step, the same noise.
  again = sam.get('rwp').gradient(
      harness.oracle(problem, config, problem.w, state, step=4)
  )
  other = sam.get('rwp').gradient(
      harness.oracle(problem, config, problem.w, state, step=5)
  )
  np.testing.assert_array_equal(
      problem.flat(again.descent), problem.flat(result.descent)
  )
  assert not np.allclose(problem.flat(other.descent), expected)
