"""Sharpness measures against closed forms on quadratics, a brute-force
maximum, the rescaling invariance of adaptive sharpness, and by-hand
computations on the tiny MLP (full batch and m-sharpness)."""

import functools

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from analysis import sharpness
import sam
import sparsity
from tests import analysis_setup


def quadratic(a, b):
  """L(w) = 1/2 w^T A w - b^T w over {'kernel': w} and its gradient."""
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  loss = lambda p: 0.5 * p['kernel'] @ a @ p['kernel'] - b @ p['kernel']
  return loss, jax.grad(loss)


def random_quadratic(dim=6, seed=0):
  rng = np.random.default_rng(seed)
  m = rng.standard_normal((dim, dim))
  return (
      m @ m.T + 0.1 * np.eye(dim),
      rng.standard_normal(dim),
      {'kernel': jnp.asarray(rng.standard_normal(dim), jnp.float32)},
  )


@pytest.mark.parametrize('rho', [0.01, 0.3])
def test_one_step_is_the_sam_perturbation_in_closed_form(rho):
  a, b, params = random_quadratic()
  loss, grad = quadratic(a, b)
  w = np.asarray(params['kernel'], np.float64)
  g = a @ w - b
  e = rho * g / np.linalg.norm(g)
  value, perturbation = sharpness.worst_case(loss, grad, params, rho)
  # L(w + e) - L(w) = g.e + e.A.e / 2.
  assert float(value) == pytest.approx(g @ e + e @ a @ e / 2, rel=1e-4)
  np.testing.assert_allclose(perturbation['kernel'], e, rtol=1e-5)


def test_multi_step_approaches_the_brute_force_maximum_from_below():
  # Strong curvature across the gradient: one step (along g) is far from
  # the maximum, which a convex L attains on the sphere ||e|| = rho.
  a, b = np.diag([10.0, 0.1]), np.array([-0.2, -1.0])
  params = {'kernel': jnp.zeros(2)}
  loss, grad = quadratic(a, b)
  rho = 1.0
  angles = np.linspace(0, 2 * np.pi, 200_001)
  e = rho * np.stack([np.cos(angles), np.sin(angles)], 1)
  brute_force = np.max(0.5 * np.einsum('ni,ij,nj->n', e, a, e) - e @ b)
  one_step = float(sharpness.worst_case(loss, grad, params, rho)[0])
  multi_step, perturbation = sharpness.worst_case(
      loss, grad, params, rho, num_steps=20
  )
  assert one_step < 0.3 * brute_force
  # Every iterate is feasible: a lower bound, here within 3%.
  assert 0.97 * brute_force < float(multi_step) <= brute_force * (1 + 1e-6)
  assert float(optax.global_norm(perturbation)) <= rho * (1 + 1e-6)
  assert float(
      loss(optax.tree_utils.tree_add(params, perturbation))
  ) == pytest.approx(float(multi_step), rel=1e-6)


def test_adaptive_one_step_in_closed_form():
  a, b, params = random_quadratic(seed=1)
  loss, grad = quadratic(a, b)
  scale = sam.adaptive_scale(params, 0.01, sparsity.is_kernel)
  t = np.asarray(scale['kernel'], np.float64)
  w = np.asarray(params['kernel'], np.float64)
  g = a @ w - b
  rho = 0.2
  e = rho * t**2 * g / np.linalg.norm(t * g)
  value, _ = sharpness.worst_case(loss, grad, params, rho, scale=scale)
  assert float(value) == pytest.approx(g @ e + e @ a @ e / 2, rel=1e-4)


def test_adaptive_sharpness_is_invariant_to_rescaling_the_layers():
  # relu(x W1) W2 computes the same function for (k W1, W2 / k); with
  # T = |w| (eta = 0) adaptive sharpness does not change, plain does.
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.standard_normal((64, 5)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 3, 64))

  def loss(p):
    logits = jax.nn.relu(x @ p['0']['kernel']) @ p['1']['kernel']
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, labels
    ).mean()

  params = {
      '0': {'kernel': jnp.asarray(rng.standard_normal((5, 7)), jnp.float32)},
      '1': {'kernel': jnp.asarray(rng.standard_normal((7, 3)), jnp.float32)},
  }
  rescaled = {
      '0': {'kernel': 4.0 * params['0']['kernel']},
      '1': {'kernel': params['1']['kernel'] / 4.0},
  }
  assert float(loss(rescaled)) == pytest.approx(float(loss(params)), rel=1e-5)

  @functools.partial(jax.jit, static_argnums=1)
  def measure(p, adaptive):
    scale = (
        sam.adaptive_scale(p, 0.0, sparsity.is_kernel) if adaptive else (None)
    )
    return sharpness.worst_case(loss, jax.grad(loss), p, 0.1, 3, scale)[0]

  assert float(measure(rescaled, True)) == pytest.approx(
      float(measure(params, True)), rel=1e-4
  )
  assert abs(measure(rescaled, False) / measure(params, False) - 1) > 0.1


def test_average_case_is_half_sigma_squared_times_the_trace():
  a, b, _ = random_quadratic(seed=3)
  loss, _ = quadratic(a, b)
  # At the minimum, so that no (mean-zero) linear term adds variance.
  params = {'kernel': jnp.asarray(np.linalg.solve(a, b), jnp.float32)}
  sigma = 0.05
  draws = jax.vmap(
      lambda key: sharpness.average_case_increase(loss, params, key, sigma)
  )(jax.random.split(jax.random.key(0), 1000))
  mean, stderr = np.mean(draws), np.std(draws, ddof=1) / np.sqrt(len(draws))
  # E[e.A.e / 2] = sigma^2 tr(A) / 2.
  expected = sigma**2 * np.trace(a) / 2
  assert abs(mean - expected) < 4 * stderr
  assert stderr < 0.2 * expected


@functools.partial(jax.jit, static_argnums=(3, 4))
def by_hand_worst_case(state, images, labels, rho, steps):
  """worst_case on a plain loss over these examples, flat parameters."""
  loss = analysis_setup.flat_loss(state, images, labels)
  x0, _ = ravel_pytree(state.params)
  return sharpness.worst_case(loss, jax.grad(loss), x0, rho, steps)[0]


def test_full_batch_and_m_sharpness_match_by_hand_computations():
  analyzer = analysis_setup.tiny_analyzer()
  state = analysis_setup.tiny_state(analysis_setup.tiny_config())
  images, labels = analysis_setup.subset_arrays(analyzer)
  settings = analyzer.settings
  one_step = analyzer.worst_case_sharpness(state, settings.rho, 1)
  assert one_step == pytest.approx(
      float(by_hand_worst_case(state, images, labels, settings.rho, 1)),
      rel=1e-3,
  )
  # m-sharpness: each group of m consecutive examples ascends on its own.
  m = settings.m
  groups = [
      by_hand_worst_case(
          state,
          images[i : i + m],
          labels[i : i + m],
          settings.rho,
          settings.ascent_steps,
      )
      for i in range(0, len(labels), m)
  ]
  assert analyzer.m_sharpness(state) == pytest.approx(np.mean(groups), rel=1e-3)
  assert np.mean(groups) > one_step  # Small groups are sharper.
