"""Lanczos, Hutchinson and SLQ against numpy.linalg.eigvalsh of the exact
jax.hessian of a 418-parameter MLP's loss, dense and pruned."""

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

from analysis import hessian
from analysis import objective
from analysis import parts
from input_pipeline import sources
from runtime import parallel
from tests import analysis_setup


@pytest.fixture(scope='module', params=[0.0, 0.5], ids=['dense', 'pruned'])
def case(request):
  config, state, analyzer, full, free = analysis_setup.exact(request.param)
  eigenvalues = np.linalg.eigvalsh(full[free][:, free])
  return state, analyzer, full, free, eigenvalues


def test_hvp_is_the_exact_hessian_times_the_vector(case):
  state, analyzer, full, free, _ = case
  vector = np.random.default_rng(0).standard_normal(full.shape[0])
  _, unravel = ravel_pytree(state.params)
  data_parallel = objective.Objective(
      sources.get_spec('mnist1d'), parallel.create_mesh()
  ).hvp(state, state.params, analyzer.data, unravel(jnp.float32(vector)))
  # Pruned weights neither move nor count: M H M v.
  expected = free * (full @ (free * vector))
  np.testing.assert_allclose(
      ravel_pytree(data_parallel)[0],
      expected,
      rtol=2e-4,
      atol=2e-5 * np.abs(expected).max(),
  )


def test_top_eigenpairs_and_the_most_negative_eigenvalue(case):
  state, analyzer, full, free, eigenvalues = case
  top_k = 5
  values, residuals, vectors, _ = analyzer.eigenpairs(
      state, analyzer.settings.lanczos_iterations, top_k, tolerance=0.0
  )
  np.testing.assert_allclose(
      values[:top_k], eigenvalues[::-1][:top_k], rtol=1e-4
  )
  largest = eigenvalues[-1]
  assert eigenvalues[0] < 0  # An untrained network: indefinite.
  assert values[-1] == pytest.approx(eigenvalues[0], abs=1e-4 * largest)
  # The reported residuals bound the distance to an exact eigenvalue.
  for value, residual in zip(values, residuals):
    assert np.min(np.abs(eigenvalues - value)) <= residual + 1e-6 * largest
  assert np.all(residuals[:top_k] < 1e-3 * largest)
  # Without the most negative eigenvalue its residual is not measured.
  top_values, top_residuals, _, _ = analyzer.eigenpairs(
      state,
      analyzer.settings.lanczos_iterations,
      top_k,
      tolerance=0.0,
      converge_smallest=False,
  )
  np.testing.assert_array_equal(top_values, values)
  np.testing.assert_allclose(
      top_residuals[:top_k], residuals[:top_k], rtol=1e-5
  )
  assert np.isnan(top_residuals[-1])
  # The top eigenvector, against eigh's (up to sign).
  exact_top = np.linalg.eigh(full[free][:, free])[1][:, -1]
  top = ravel_pytree(vectors[0])[0]
  assert np.all(np.asarray(top)[~free] == 0)
  assert abs(np.dot(np.asarray(top)[free], exact_top)) > 1 - 1e-4


def test_lanczos_stops_once_its_residual_bounds_meet_the_tolerance(case):
  state, analyzer, _, _, eigenvalues = case
  top_k, cap, largest = 5, analyzer.settings.lanczos_iterations, eigenvalues[-1]
  *_, all_steps = analyzer.eigenpairs(state, cap, top_k, tolerance=0.0)
  assert all_steps == cap
  for tolerance in (1e-2, 1e-3):
    values, residuals, _, steps = analyzer.eigenpairs(
        state, cap, top_k, tolerance
    )
    assert steps < cap
    # The measured residuals agree with the bounds Lanczos stopped on.
    assert np.all(residuals <= 1.5 * tolerance * largest)
    for value, residual in zip(values, residuals):
      assert np.min(np.abs(eigenvalues - value)) <= residual + 1e-6 * largest
  # At 1e-3 the top eigenvalue is already exact to float32 rounding.
  assert values[0] == pytest.approx(largest, rel=1e-5)
  # A looser tolerance takes fewer steps.
  *_, loose_steps = analyzer.eigenpairs(state, cap, top_k, 1e-2)
  assert loose_steps <= steps


def test_lanczos_to_tolerance_does_not_stop_at_the_second_eigenvalue():
  # A start vector that touches the top eigenvector (eigenvalue 10) little:
  # the second eigenvalue (9) converges first, with a small residual.
  rng = np.random.default_rng(0)
  eigenvalues = np.concatenate([[10.0, 9.0], np.linspace(-1, 5, 198)])
  rotation, _ = np.linalg.qr(rng.standard_normal((200, 200)))
  matrix = jnp.asarray((rotation * eigenvalues) @ rotation.T, jnp.float32)
  weights = rng.standard_normal(200)
  weights[0] = 1e-3
  start = jnp.asarray(rotation @ weights, jnp.float32)
  block = jax.jit(
      lambda result, first: hessian.lanczos_steps(
          lambda v: matrix @ v, result, first, 4, jax.random.key(0)
      )
  )
  tolerance = 1e-2
  # The hazard: a check whose residual bound alone says "converged" while
  # the top Ritz value is still the second eigenvalue.
  result = hessian.lanczos_start(start, 60)
  for first in range(0, 60, 4):
    result = block(result, first)
    values, _, bounds = hessian.extreme_ritz(
        result.alphas[: first + 4], result.betas[: first + 4], 1
    )
    if bounds[0] <= tolerance * abs(values).max():
      break
  assert values[0] == pytest.approx(9, abs=0.01)
  _, steps, values, _ = hessian.lanczos_to_tolerance(
      block,
      hessian.lanczos_start(start, 60),
      4,
      1,
      tolerance,
      converge_smallest=False,
  )
  assert values[0] == pytest.approx(10, rel=1e-5) and steps < 60


def test_lanczos_in_blocks_equals_lanczos_in_one_run():
  matrix = np.random.default_rng(0).standard_normal((30, 30))
  matrix = jnp.asarray(matrix + matrix.T, jnp.float32)
  start = jnp.ones(30, jnp.float32)
  key = jax.random.key(0)
  whole = hessian.lanczos(lambda v: matrix @ v, start, 12, key)
  blocks = hessian.lanczos_start(start, 12)
  for first in range(0, 12, 5):  # 5 + 5 + the 2 that fit.
    blocks = hessian.lanczos_steps(lambda v: matrix @ v, blocks, first, 5, key)
  for got, expected in zip(blocks, whole):
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
  # Fewer steps than the Ritz values it reports: refused, not a loop.
  with pytest.raises(ValueError, match='no more than 12 Ritz values'):
    hessian.lanczos_to_tolerance(
        lambda result, first: hessian.lanczos_steps(
            lambda v: matrix @ v, result, first, 5, key
        ),
        hessian.lanczos_start(start, 12),
        5,
        12,
        1e-3,
    )


def test_hutchinson_trace_is_within_its_standard_error(case):
  state, analyzer, _, _, eigenvalues = case
  exact = eigenvalues.sum()
  trace, stderr, probes = analyzer.trace(
      state, analyzer.settings.hutchinson_probes, tolerance=0.0
  )
  assert probes == analyzer.settings.hutchinson_probes
  assert abs(trace - exact) < 4 * stderr
  assert stderr < 0.1 * abs(exact)  # The error is informative.
  # To a tolerance: fewer probes, the same estimate within its error.
  trace, stderr, probes = analyzer.trace(
      state, analyzer.settings.hutchinson_probes, tolerance=0.05
  )
  assert 10 <= probes < analyzer.settings.hutchinson_probes
  assert stderr <= 0.05 * abs(trace)
  assert abs(trace - exact) < 4 * stderr


def test_slq_moments_are_within_their_standard_errors(case):
  state, analyzer, _, free, eigenvalues = case
  quadrature = analyzer.quadrature(state)
  orders = [1, 2, 3, 4]
  moments, stderrs = hessian.mean_and_stderr(
      hessian.quadrature_moments(quadrature, orders)
  )
  for order, moment, stderr in zip(orders, moments, stderrs):
    exact = np.mean(eigenvalues**order)  # Over the free weights only.
    assert abs(moment - exact) < 4 * stderr, order
    # Informative: small next to E|lambda|^k (odd moments may cancel).
    assert stderr < 0.5 * np.mean(np.abs(eigenvalues) ** order), order
  np.testing.assert_allclose(quadrature.weights.sum(-1), 1, rtol=1e-5)
  grid, density, _ = parts.density_grid(quadrature, 2000, 0.01)
  assert np.trapezoid(density, grid) == pytest.approx(1, abs=1e-3)


def test_lanczos_restarts_on_an_invariant_subspace():
  # 3 distinct eigenvalues, each 4 times: a Krylov space has dimension 3, so
  # 9 steps break down twice and restart in the orthogonal complement (an
  # invariant subspace with the same 3 eigenvalues): 3 exact blocks.
  eigenvalues = np.repeat([-1.0, 2.0, 5.0], 4)
  rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((12, 12)))
  matrix = jnp.asarray((rotation * eigenvalues) @ rotation.T, jnp.float32)
  start = jnp.asarray(np.random.default_rng(1).standard_normal(12), jnp.float32)
  result = jax.jit(hessian.lanczos, static_argnums=(0, 2))(
      lambda v: matrix @ v, start, 9, jax.random.key(0)
  )
  np.testing.assert_allclose(
      result.basis @ result.basis.T, np.eye(9), atol=1e-5
  )
  assert result.betas[2] == 0 and result.betas[5] == 0
  assert np.all(np.delete(result.betas, [2, 5, 8]) > 0.1)
  values = np.linalg.eigvalsh(np.asarray(hessian.tridiagonal(result)))
  np.testing.assert_allclose(values, np.repeat([-1.0, 2.0, 5.0], 3), atol=1e-4)
  # The quadrature of the start vector's measure: later blocks weigh 0.
  nodes, weights = hessian.gauss_quadrature(result)
  coordinates = (rotation.T @ np.asarray(start)) ** 2 / np.sum(
      np.asarray(start) ** 2
  )
  for target in (-1.0, 2.0, 5.0):
    expected = coordinates[eigenvalues == target].sum()
    assert weights[np.abs(nodes - target) < 1e-3].sum() == pytest.approx(
        expected, abs=1e-5
    )
