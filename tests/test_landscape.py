"""Filter normalization, grids and interpolation, against direct evaluation."""

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

from analysis import landscape
import sparsity
from tests import analysis_setup


def test_filter_normalization_matches_each_filter_to_its_weights():
  # Flax's layouts: conv kernels (h, w, in, out) and dense kernels
  # (in, out), with BatchNorm scales and offsets and biases; half of the
  # kernels' entries pruned.
  rng = np.random.default_rng(0)
  shapes = {
      'Conv_0': {'kernel': (3, 3, 2, 4)},
      'BatchNorm_0': {'scale': (4,), 'bias': (4,)},
      'Conv_1': {'kernel': (1, 1, 4, 6)},
      'Dense_0': {'kernel': (6, 3), 'bias': (3,)},
  }
  params = jax.tree.map(
      lambda s: jnp.asarray(rng.standard_normal(s), jnp.float32),
      shapes,
      is_leaf=lambda s: isinstance(s, tuple),
  )
  mask = jax.tree_util.tree_map_with_path(
      lambda path, p: (
          rng.random(p.shape) < 0.5
          if sparsity.is_kernel(path)
          else np.ones(p.shape, bool)
      ),
      params,
  )
  params = sparsity.apply_mask(params, mask)
  direction = jax.jit(landscape.random_direction)(
      jax.random.key(2), params, mask
  )
  kernels = 0
  for (path, d), w, m in zip(
      jax.tree_util.tree_leaves_with_path(direction),
      jax.tree.leaves(params),
      jax.tree.leaves(mask),
  ):
    d, w = np.asarray(d), np.asarray(w)
    if not sparsity.is_kernel(path):  # Biases and BatchNorm: excluded.
      assert np.all(d == 0), path
      continue
    kernels += 1
    assert np.all(d[~np.asarray(m)] == 0), path  # Pruned weights stay.
    filters = d.reshape(-1, d.shape[-1]), w.reshape(-1, w.shape[-1])
    np.testing.assert_allclose(
        np.linalg.norm(filters[0], axis=0),
        np.linalg.norm(filters[1], axis=0),
        rtol=1e-5,
        err_msg=str(path),
    )
  assert kernels == 3


def test_a_zero_filter_direction_stays_zero():
  params = {'kernel': jnp.ones((3, 2))}
  direction = {'kernel': jnp.array([[0.0, 1.0], [0.0, 2.0], [0.0, 2.0]])}
  normalized = landscape.filter_normalize(direction, params)
  np.testing.assert_allclose(
      normalized['kernel'],
      [[0, np.sqrt(3) / 3], [0, 2 * np.sqrt(3) / 3], [0, 2 * np.sqrt(3) / 3]],
      rtol=1e-6,
  )


def test_grids_and_interpolation_evaluate_the_loss_at_each_point():
  rng = np.random.default_rng(0)
  a = rng.standard_normal((4, 4))
  loss = lambda p: jnp.sum((a @ p['w']) ** 2)
  params, first, second = (
      {'w': jnp.asarray(rng.standard_normal(4), jnp.float32)} for _ in range(3)
  )
  at = lambda x: float(np.sum((a @ x) ** 2))
  w, d1, d2 = (np.asarray(t['w']) for t in (params, first, second))
  alphas, betas = [-1.0, 0.0, 0.5], [-0.5, 2.0]
  np.testing.assert_allclose(
      landscape.line(loss, params, first, alphas),
      [at(w + alpha * d1) for alpha in alphas],
      rtol=1e-5,
  )
  np.testing.assert_allclose(
      landscape.plane(loss, params, first, second, alphas, betas),
      [[at(w + alpha * d1 + beta * d2) for beta in betas] for alpha in alphas],
      rtol=1e-5,
  )
  np.testing.assert_allclose(
      landscape.interpolation(loss, params, first, [-0.5, 0.0, 1.0, 1.5]),
      [at((1 - t) * w + t * d1) for t in (-0.5, 0.0, 1.0, 1.5)],
      rtol=1e-5,
  )


def test_analyzer_landscapes_and_interpolation_on_the_tiny_mlp():
  analyzer = analysis_setup.tiny_analyzer()
  config = analysis_setup.tiny_config()
  state = analysis_setup.tiny_state(config)
  other = analysis_setup.tiny_state(config, seed=1)
  loss = analysis_setup.flat_loss(
      state, *analysis_setup.subset_arrays(analyzer)
  )
  x0, _ = ravel_pytree(state.params)
  first, second = (ravel_pytree(d)[0] for d in analyzer.directions(state))
  surfaces = analyzer.landscape(state)
  for alpha, value in zip(surfaces['alphas'], surfaces['line']['loss']):
    assert value == pytest.approx(float(loss(x0 + alpha * first)), rel=1e-5)
  grid = surfaces['grid']
  assert surfaces['plane']['loss'].shape == (len(grid), len(grid))
  for i, j in ((0, 0), (3, len(grid) - 1), (len(grid) // 2, 2)):
    assert surfaces['plane']['loss'][i, j] == pytest.approx(
        float(loss(x0 + grid[i] * first + grid[j] * second)), rel=1e-5
    )
  path = analyzer.interpolation(state, other)
  x1, _ = ravel_pytree(other.params)
  for t, value in zip(path['ts'], path['path']['loss']):
    assert value == pytest.approx(float(loss((1 - t) * x0 + t * x1)), rel=1e-5)
  assert -0.5 == path['ts'][0] and path['ts'][-1] == 1.5
