r"""SAM-ON: SAM perturbing only the normalization layers (Mueller, Vlaar,
Rolnick & Hein, "Normalization Layers Are All That Sharpness-Aware
Minimization Needs", NeurIPS 2023).

`config.sam_variant='sam_on'`. Let N be the scales and biases of the
normalization layers (BatchNorm, GroupNorm, LayerNorm: the parameters whose
path names a `*Norm*` module) and g_N the gradient's part on them. SAM-ON
takes SAM's (or ASAM's) ascent in N alone,

    e_N = rho T^2 g_N / ||T g_N||_2,     e = 0 on every other parameter,
    g_descent = grad L(w + e)            (on all parameters),

with T = 1 (SAM-ON) or T = |w| + eta (ASAM-ON, `sam_on_adaptive`, on the
scales and the biases, as the authors' `--normalize_bias`). Normalization
parameters are a tiny fraction of a network, yet the paper finds this
matches or beats full SAM, and its rho is larger (its ASAM-ON recipe uses
rho = 10 on CIFAR). As in the authors' code (sam_on.py) the norm covers
N alone and all parameters descend with the perturbed gradient; where it
adds 1e-16 to the norm, a zero g_N gives e = 0 here. A model without
normalization layers is refused.
"""

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from configuration import config_util
import models
import sam as variants


def is_normalization(path: tuple[Any, ...]) -> bool:
  """Whether a parameter belongs to a normalization layer (its path names a
  module such as BatchNorm_0, LayerNorm_1 or GroupNorm_0)."""
  return any('norm' in str(getattr(k, 'key', k)).lower() for k in path[:-1])


def _on_normalization(tree):
  """`tree` on the normalization parameters, zero elsewhere."""
  return jax.tree_util.tree_map_with_path(
      lambda path, x: x if is_normalization(path) else jnp.zeros_like(x),
      tree,
  )


def gradient(oracle: 'variants.Oracle') -> 'variants.Result':
  """grad L at w + e, e SAM's ascent restricted to the normalization
  parameters."""
  config = oracle.config
  grads, clean_aux = oracle.grad_fn(oracle.params)
  direction = _on_normalization(
      variants.ascent_direction(grads, oracle.params, config)
  )
  scale = (
      variants.adaptive_scale(
          oracle.params, config.sam_on_eta, is_normalization
      )
      if config.sam_on_adaptive
      else None
  )
  e = variants.ascent_perturbation(direction, oracle.rho, scale)
  return variants.descend_at(oracle, e, clean_aux)


def check(config: ml_collections.ConfigDict) -> None:
  config_util.require(
      models.get(config.model).normalized(config),
      f'sam_variant=sam_on perturbs normalization layers, which '
      f'model={config.model} (with these settings) does not have',
  )
  config_util.require(
      config.sam_on_eta >= 0,
      f'sam_on_eta must be >= 0, got {config.sam_on_eta}',
  )


VARIANT = variants.Variant(
    name='sam_on',
    gradient=gradient,
    defaults={
        # ASAM-ON: the ball scaled by |w| + sam_on_eta on the normalization
        # parameters.
        'sam_on_adaptive': False,
        'sam_on_eta': 0.01,
    },
    reads=('sam_weight_decay_in_ascent',),
    check=check,
    normalization_only=True,
)
