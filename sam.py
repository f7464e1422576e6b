r"""Sharpness-Aware Minimization (Foret et al., 2021) as pure pytree functions.

SAM minimizes the worst loss in an L2 ball around the weights,

    min_w  max_{||e||_2 <= rho}  L(w + e).

A first-order Taylor expansion of the inner problem gives the ascent step

    g = grad L(w),        e(w) = rho * g / ||g||_2,

and SAM descends with the gradient at the perturbed point, dropping the term
that differentiates through e(w) (as the paper does):

    grad_SAM(w) = grad L(w)|_{w + e(w)}.

Each step therefore costs two forward/backward passes. The descent gradient
then drives an ordinary base optimizer (SGD with momentum here), so SAM is a
gradient oracle rather than an optax transformation: the step needs the clean
pass's auxiliary outputs (BatchNorm statistics, logits for the metrics),
which `optax.contrib.sam`'s interface does not return.

Under data parallelism each device calls `sam_gradient` on its own batch, so
the ascent is computed on per-device batches ("m-sharpness" with m = the
per-device batch size, as in the original SAM code); the descent gradients
are then averaged across devices by the caller.
"""

from typing import Any, Callable, TypeVar

import jax
import jax.numpy as jnp
import optax

PyTree = Any
Aux = TypeVar('Aux')
GradFn = Callable[[PyTree], tuple[PyTree, Aux]]


def ascent_perturbation(direction: PyTree, rho: float | jax.Array) -> PyTree:
  """Returns e = rho * d / ||d||_2, the maximizer of <d, e> over ||e|| <= rho.

  The norm is global over the whole pytree. A zero direction gives a zero
  perturbation rather than NaN.
  """
  norm = optax.global_norm(direction)
  scale = rho / jnp.where(norm > 0, norm, 1.0)
  return jax.tree.map(lambda d: scale * d, direction)


def sam_gradient(
    grad_fn: GradFn,
    params: PyTree,
    rho: float | jax.Array,
    ascent_weight_decay: float = 0.0,
) -> tuple[PyTree, Aux]:
  r"""Returns grad L(w + e) with e = rho * d / ||d||, and the clean pass's aux.

  The ascent direction is d = grad L(w) + ascent_weight_decay * w: with a
  non-zero `ascent_weight_decay` the L2 penalty (wd/2)||w||^2 is part of the
  loss whose sharpness is measured, as in Foret et al.'s code; with 0 it is
  applied only by the base optimizer, as in Shin et al.'s code.

  Args:
    grad_fn: params -> (gradient of the training loss, aux). It is called
      twice: at w (its aux is returned, so BatchNorm statistics and metrics
      come from the unperturbed pass) and at w + e (its aux is discarded).
    params: the current weights w.
    rho: radius of the L2 ball.
    ascent_weight_decay: coefficient of w added to the ascent direction.

  Returns:
    (the SAM gradient at w, aux of the clean pass).
  """
  grads, aux = grad_fn(params)
  direction = jax.tree.map(lambda g, w: g + ascent_weight_decay * w,
                           grads, params)
  perturbation = ascent_perturbation(direction, rho)
  perturbed = jax.tree.map(jnp.add, params, perturbation)
  sam_grads, _ = grad_fn(perturbed)
  return sam_grads, aux
