"""SAM-ON (sam_variant='sam_on'): the ascent touches only the normalization
parameters, with SAM's and ASAM's formulas restricted to them (by hand on
a quadratic), and a model without normalization layers is refused."""

import jax
from jax import flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from configuration import config_util
from configuration import validate
import models
import sam
from sam import sam_on
from tests import variant_harness as harness
from tests.conftest import small_config


def quadratic_with_a_norm_layer(seed=11):
  """L = 1/2 w^T A w - b^T w over {Dense_0: kernel, LayerNorm_0: bias,
  scale}; returns (A, b, params, flat weights, unravel, grad_fn)."""
  rng = np.random.default_rng(seed)
  params = {
      'Dense_0': {'kernel': jnp.asarray(rng.standard_normal((2, 2)))},
      'LayerNorm_0': {
          'bias': jnp.asarray(rng.standard_normal(2)),
          'scale': jnp.asarray(1 + rng.standard_normal(2) / 3),
      },
  }
  w, unravel = flatten_util.ravel_pytree(params)
  m = rng.standard_normal((8, 8))
  a, b = m @ m.T + np.eye(8), rng.standard_normal(8)

  def grad_fn(tree):
    flat, _ = flatten_util.ravel_pytree(tree)
    return unravel(jnp.asarray(a, jnp.float32) @ flat - b), None

  return a, b, params, np.asarray(w), grad_fn


@pytest.mark.parametrize('adaptive', [False, True])
def test_sam_on_perturbs_only_the_normalization_parameters(adaptive):
  a, b, params, w, grad_fn = quadratic_with_a_norm_layer()
  config = harness.config_for(
      'sam_on', rho=0.5, sam_on_adaptive=adaptive, sam_on_eta=0.01
  )
  # ravel_pytree's order: Dense_0/kernel (4), LayerNorm_0/bias, /scale.
  on_norm = np.arange(8) >= 4
  g = a @ w - b
  t = np.where(on_norm, np.abs(w) + 0.01, 1.0) if adaptive else np.ones(8)
  g_n = np.where(on_norm, g, 0.0)
  e = 0.5 * t**2 * g_n / np.linalg.norm(t * g_n)
  result = sam.get('sam_on').gradient(
      sam.Oracle(
          grad_fn=grad_fn,
          params=params,
          rho=0.5,
          config=config,
          step=jnp.int32(0),
          learning_rate=jnp.float32(0.1),
      )
  )
  flat, _ = flatten_util.ravel_pytree(result.descent)
  np.testing.assert_allclose(flat, a @ (w + e) - b, rtol=1e-5)
  # The kernel was not perturbed, but it descends with the perturbed
  # gradient like every other parameter.
  assert not np.allclose(np.asarray(flat)[:4], g[:4])


def test_the_paths_of_real_normalization_layers_are_recognized():
  config = small_config(model='resnet18', num_filters=2)
  variables = jax.eval_shape(
      models.create_model(config, 10).init,
      jax.random.key(0),
      jnp.zeros((1, 8, 8, 1)),
  )
  chosen = {
      jax.tree_util.keystr(path): sam_on.is_normalization(path)
      for path, _ in jax.tree_util.tree_leaves_with_path(variables['params'])
  }
  # The BatchNorms of the blocks, of the stem (norm_init) and of the
  # projections (norm_proj); not a convolution or the classifier.
  assert all(
      ('BatchNorm' in p or 'norm_' in p) == on for p, on in chosen.items()
  )
  assert sum(chosen.values()) == 2 * (2 * 8 + 1 + 3)
  assert not any(
      sam_on.is_normalization(path)
      for path, _ in jax.tree_util.tree_leaves_with_path(
          {'Conv_0': {'kernel': 0}, 'Dense_0': {'bias': 0}}
      )
  )


@pytest.mark.parametrize(
    'overrides',
    [
        {},
        {
            'dataset': 'fashion_mnist',
            'model': 'resnet18',
            'num_filters': 2,
            'norm': 'none',
        },
    ],
)
def test_a_model_without_normalization_layers_is_refused(overrides):
  with pytest.raises(config_util.ConfigError, match='normalization layers'):
    validate.check_config(
        harness.config_for('sam_on', **overrides), device_checks=False
    )
