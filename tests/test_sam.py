"""SAM's gradient against the hand-derived one on a quadratic, and the
variants' registry."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from configuration import config_util
from configuration import validate
import sam
from tests import variant_harness
from tests.conftest import small_config


def quadratic(seed=0):
  """variant_harness.Quadratic as (A, b, params, flat, grad_fn), its aux
  a string naming the point (so a test can tell which pass it came from)."""
  problem = variant_harness.Quadratic(seed)

  def flat(tree):
    return jnp.concatenate([tree['a'], tree['b'].ravel()])

  def grad_fn(tree):
    return problem.grad_fn(tree)[0], 'aux-at-' + str(float(flat(tree)[0]))

  return problem.a, problem.b, problem.tree(problem.w), flat, grad_fn


@pytest.mark.parametrize('rho', [0.05, 0.5, 2.0])
def test_sam_gradient_matches_hand_derivation(rho):
  a, b, params, flat, grad_fn = quadratic()
  w = np.asarray(flat(params))
  g = a @ w - b
  # grad L(w + rho g/|g|) = A (w + rho g/|g|) - b = g + rho A g / |g|.
  expected = g + rho * a @ g / np.linalg.norm(g)
  grads, aux, _ = sam.sam_gradient(grad_fn, params, rho)
  np.testing.assert_allclose(flat(grads), expected, rtol=1e-5)
  # The auxiliary output is the clean pass's, at w.
  assert aux == 'aux-at-' + str(float(w[0]))


def test_weight_decay_enters_the_ascent_direction_only_when_asked():
  a, b, params, flat, grad_fn = quadratic(seed=1)
  w = np.asarray(flat(params))
  rho, wd = 0.3, 0.1
  d = a @ w - b + wd * w
  expected = a @ (w + rho * d / np.linalg.norm(d)) - b
  grads, _, _ = sam.sam_gradient(grad_fn, params, rho, ascent_weight_decay=wd)
  np.testing.assert_allclose(flat(grads), expected, rtol=1e-5)
  plain, _, _ = sam.sam_gradient(grad_fn, params, rho)
  assert not np.allclose(flat(plain), expected)


def test_perturbation_has_norm_rho_and_is_zero_for_a_zero_direction():
  direction = {'x': jnp.array([3.0, 4.0]), 'y': jnp.array([[12.0]])}
  e = sam.ascent_perturbation(direction, 0.26)
  np.testing.assert_allclose(e['x'], [0.06, 0.08])
  np.testing.assert_allclose(e['y'], [[0.24]])
  zero = sam.ascent_perturbation(jax.tree.map(jnp.zeros_like, direction), 1.0)
  assert all(np.all(np.asarray(z) == 0) for z in jax.tree.leaves(zero))


def test_multistep_ascent_matches_projected_steps_by_hand():
  a, b, params, flat, grad_fn = quadratic(seed=2)
  w = np.asarray(flat(params), np.float64)
  rho, k = 0.7, 3
  e = np.zeros_like(w)
  for _ in range(k):
    g = a @ (w + e) - b
    e = e + rho / k * g / np.linalg.norm(g)
    e = e * min(1.0, rho / np.linalg.norm(e))
  expected = a @ (w + e) - b
  grads, _, _ = sam.sam_gradient(grad_fn, params, rho, steps=k)
  np.testing.assert_allclose(flat(grads), expected, rtol=1e-4)
  one_step, _, _ = sam.sam_gradient(grad_fn, params, rho, steps=1)
  single, _, _ = sam.sam_gradient(grad_fn, params, rho)
  np.testing.assert_array_equal(flat(one_step), flat(single))


def test_adaptive_perturbation_scales_with_the_weights():
  a, b, params, flat, grad_fn = quadratic(seed=3)
  w = np.asarray(flat(params), np.float64)
  rho, eta = 0.5, 0.01
  is_kernel = lambda path: path[-1].key == 'b'  # 'a' plays a bias.
  scale = sam.adaptive_scale(params, eta, is_kernel)
  t = np.concatenate([np.ones(3), np.abs(w[3:]) + eta])
  np.testing.assert_allclose(flat(scale), t, rtol=1e-6)
  g = a @ w - b
  e = rho * t**2 * g / np.linalg.norm(t * g)  # ASAM, Kwon et al. eq. (8).
  grads, _, _ = sam.sam_gradient(grad_fn, params, rho, adaptive_scale=scale)
  np.testing.assert_allclose(flat(grads), a @ (w + e) - b, rtol=1e-4)
  # The perturbation lies on the boundary of the T^{-1}-scaled ball.
  assert np.linalg.norm(e / t) == pytest.approx(rho)


def test_projection_onto_the_ball_keeps_inner_points():
  e = {'x': jnp.array([3.0, 4.0])}
  np.testing.assert_allclose(sam.project_to_ball(e, 10.0)['x'], [3.0, 4.0])
  np.testing.assert_allclose(sam.project_to_ball(e, 1.0)['x'], [0.6, 0.8])
  scale = {'x': jnp.array([2.0, 0.5])}  # ||T^{-1} e|| = ||(1.5, 8)||.
  projected = sam.project_to_ball(e, 1.0, scale)['x']
  np.testing.assert_allclose(
      np.linalg.norm(projected / scale['x']), 1.0, rtol=1e-6
  )


def test_every_variant_is_found_and_reads_sam_keys_of_the_default_config():
  assert {'sam', 'usam'} <= set(sam.VARIANTS)
  keys = default.get_config()
  for variant in sam.VARIANTS.values():
    for key in variant.keys:
      # Named so that reports and sweeps know SGD ignores it.
      assert key in keys and default.is_sam_only(key), (variant.name, key)


def test_an_unknown_variant_and_another_variants_key_are_refused():
  with pytest.raises(
      config_util.ConfigError,
      match=re.escape(
          "unknown sam_variant 'nosuch'; known: " + ', '.join(sam.VARIANTS)
      ),
  ):
    validate.check_config(small_config(sam_variant='nosuch'))
  with pytest.raises(
      config_util.ConfigError,
      match=re.escape(
          'sam_steps=3 is read by sam_variant=sam, not usam; leave it at its '
          'default (1)'
      ),
  ):
    validate.check_config(small_config(sam_variant='usam', sam_steps=3))
  with pytest.raises(
      config_util.ConfigError, match='sam_steps must be >= 1, got 0'
  ):
    validate.check_config(small_config(sam_steps=0))
