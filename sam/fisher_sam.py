r"""Fisher SAM: the ascent in a ball of the Fisher metric (Kim, Li, Hu &
Hospedales, "Fisher SAM: Information Geometry and Sharpness Aware
Minimisation", ICML 2022).

`config.sam_variant='fisher_sam'`. SAM's ball ||e||_2 <= rho treats every
direction of weight space alike; Fisher SAM measures e with the Fisher
information of the model's predictive distribution, e^T F e <= rho^2. With
g = grad L(w) on the batch and the paper's diagonal estimate of F from the
batch gradient,

    F = 1 + eta * g^2                (elementwise),
    e = rho * F^{-1} g / sqrt(g^T F^{-1} g),
    g_descent = grad L(w + e).

The maximizer of <g, e> over the Fisher ball is this e (a Lagrangian
computation like SAM's, with F in place of the identity); it reduces to
SAM's at eta = 0. Weights with large gradients (where the loss is most
sensitive to the predictive distribution) are perturbed less.
`sam_fisher_eta` is the paper's eta; no code of the authors' is public,
and the ports we read use eta = 1 with rho (the paper's gamma) 0.1. With
`sam_weight_decay_in_ascent`, g + wd * w replaces g in both F and e.
"""

import jax
import jax.numpy as jnp
import ml_collections

from configuration import config_util
import sam as variants


def perturbation(direction, rho, eta):
  """rho F^-1 g / sqrt(g^T F^-1 g) with F = 1 + eta g^2 (g = `direction`)."""
  inverse_fisher_g = jax.tree.map(lambda g: g / (1.0 + eta * g * g), direction)
  quadratic_form = sum(
      jnp.vdot(g, h)
      for g, h in zip(
          jax.tree.leaves(direction), jax.tree.leaves(inverse_fisher_g)
      )
  )
  # A zero gradient gives a zero perturbation rather than NaN.
  scale = rho / jnp.sqrt(jnp.where(quadratic_form > 0, quadratic_form, 1.0))
  return jax.tree.map(lambda x: scale * x, inverse_fisher_g)


def gradient(oracle: 'variants.Oracle') -> 'variants.Result':
  """grad L at w + e, e the ascent in the Fisher ball."""
  grads, clean_aux = oracle.grad_fn(oracle.params)
  direction = variants.ascent_direction(grads, oracle.params, oracle.config)
  e = perturbation(direction, oracle.rho, oracle.config.sam_fisher_eta)
  return variants.descend_at(oracle, e, clean_aux)


def check(config: ml_collections.ConfigDict) -> None:
  config_util.require(
      config.sam_fisher_eta >= 0,
      f'sam_fisher_eta must be >= 0, got {config.sam_fisher_eta}',
  )


VARIANT = variants.Variant(
    name='fisher_sam',
    gradient=gradient,
    # eta of F = 1 + eta g^2 (0 is SAM).
    defaults={'sam_fisher_eta': 1.0},
    reads=('sam_weight_decay_in_ascent',),
    check=check,
)
