"""SAM's gradient against the hand-derived one on a quadratic."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sam


def quadratic(seed=0):
  """L(w) = 1/2 w^T A w - b^T w over a pytree {'a': (3,), 'b': (2, 2)}."""
  rng = np.random.default_rng(seed)
  m = rng.standard_normal((7, 7))
  a = m @ m.T + np.eye(7)
  b = rng.standard_normal(7)
  params = {'a': jnp.asarray(rng.standard_normal(3)),
            'b': jnp.asarray(rng.standard_normal((2, 2)))}

  def flat(tree):
    return jnp.concatenate([tree['a'], tree['b'].ravel()])

  def grad_fn(tree):
    g = a @ flat(tree) - b  # grad L = A w - b.
    return {'a': g[:3], 'b': g[3:].reshape(2, 2)}, 'aux-at-' + str(
        float(flat(tree)[0]))

  return a, b, params, flat, grad_fn


@pytest.mark.parametrize('rho', [0.05, 0.5, 2.0])
def test_sam_gradient_matches_hand_derivation(rho):
  a, b, params, flat, grad_fn = quadratic()
  w = np.asarray(flat(params))
  g = a @ w - b
  # grad L(w + rho g/|g|) = A (w + rho g/|g|) - b = g + rho A g / |g|.
  expected = g + rho * a @ g / np.linalg.norm(g)
  grads, aux = sam.sam_gradient(grad_fn, params, rho)
  np.testing.assert_allclose(flat(grads), expected, rtol=1e-5)
  # The auxiliary output is the clean pass's, at w.
  assert aux == 'aux-at-' + str(float(w[0]))


def test_weight_decay_enters_the_ascent_direction_only_when_asked():
  a, b, params, flat, grad_fn = quadratic(seed=1)
  w = np.asarray(flat(params))
  rho, wd = 0.3, 0.1
  d = a @ w - b + wd * w
  expected = a @ (w + rho * d / np.linalg.norm(d)) - b
  grads, _ = sam.sam_gradient(grad_fn, params, rho, ascent_weight_decay=wd)
  np.testing.assert_allclose(flat(grads), expected, rtol=1e-5)
  plain, _ = sam.sam_gradient(grad_fn, params, rho)
  assert not np.allclose(flat(plain), expected)


def test_perturbation_has_norm_rho_and_is_zero_for_a_zero_direction():
  direction = {'x': jnp.array([3.0, 4.0]), 'y': jnp.array([[12.0]])}
  e = sam.ascent_perturbation(direction, 0.26)
  np.testing.assert_allclose(e['x'], [0.06, 0.08])
  np.testing.assert_allclose(e['y'], [[0.24]])
  zero = sam.ascent_perturbation(jax.tree.map(jnp.zeros_like, direction), 1.0)
  assert all(np.all(np.asarray(z) == 0) for z in jax.tree.leaves(zero))
