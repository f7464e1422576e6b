r"""The geometry SAM's variants share: the ascent in a ball, the projection
onto it, ASAM's adaptive scale; and SAM's gradient built from them.

SAM (Foret et al., 2021) minimizes the worst loss in an L2 ball around the
weights,

    min_w  max_{||e||_2 <= rho}  L(w + e).

A first-order Taylor expansion of the inner problem gives the ascent step

    g = grad L(w),        e(w) = rho * g / ||g||_2,

and SAM descends with the gradient at the perturbed point, dropping the term
that differentiates through e(w) (as the paper does):

    grad_SAM(w) = grad L(w)|_{w + e(w)}.

Each step therefore costs two forward/backward passes.

* Multi-step ascent (Andriushchenko & Flammarion, 2022): k normalized
  gradient steps of size rho / k, each followed by a projection onto the
  ball: e_j = P(e_{j-1} + (rho / k) g_j / ||g_j||), g_j = grad L(w + e_{j-1}).
* Adaptive SAM (ASAM, Kwon et al., 2021): the ball is
  ||T_w^{-1} e||_2 <= rho with T_w = |w| + eta on kernels (1 elsewhere), so
  e = rho T_w^2 g / ||T_w g||_2: the perturbation scales with each weight.

Which batch the ascent sees (m-sharpness) is the caller's choice: it calls
this per device, or per micro-batch under `jax.vmap`.
"""

from collections.abc import Callable
from typing import Any, TypeVar

import flax
import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import optax

PyTree = Any
Aux = TypeVar('Aux')
GradFn = Callable[[PyTree], tuple[PyTree, Aux]]


def _scale(tree: PyTree, factor: jax.Array | float) -> PyTree:
  return jax.tree.map(lambda x: factor * x, tree)


def _times(tree: PyTree, weights: PyTree | None) -> PyTree:
  return tree if weights is None else jax.tree.map(jnp.multiply, tree, weights)


def _safe_inverse(norm: jax.Array) -> jax.Array:
  # A zero direction gives a zero perturbation rather than NaN.
  return 1.0 / jnp.where(norm > 0, norm, 1.0)


def ascent_perturbation(
    direction: PyTree,
    rho: float | jax.Array,
    adaptive_scale: PyTree | None = None,
) -> PyTree:
  """The maximizer of <d, e> over the ball ||T^{-1} e||_2 <= rho.

  e = rho * T^2 d / ||T d||_2, with T = `adaptive_scale` (elementwise) or the
  identity, which gives SAM's e = rho * d / ||d||_2. Norms are global over
  the whole pytree.
  """
  scaled = _times(direction, adaptive_scale)
  return _scale(
      _times(scaled, adaptive_scale),
      rho * _safe_inverse(optax.global_norm(scaled)),
  )


def project_to_ball(
    perturbation: PyTree,
    rho: float | jax.Array,
    adaptive_scale: PyTree | None = None,
) -> PyTree:
  """Projects e onto {e : ||T^{-1} e||_2 <= rho} (T as above)."""
  unscaled = (
      perturbation
      if adaptive_scale is None
      else jax.tree.map(jnp.divide, perturbation, adaptive_scale)
  )
  norm = optax.global_norm(unscaled)
  return _scale(perturbation, jnp.minimum(1.0, rho * _safe_inverse(norm)))


def adaptive_scale(
    params: PyTree, eta: float, is_scaled: Callable[[tuple[Any, ...]], bool]
) -> PyTree:
  """ASAM's T_w: |w| + eta where `is_scaled(path)`, else 1."""
  return jax.tree_util.tree_map_with_path(
      lambda path, w: jnp.abs(w) + eta if is_scaled(path) else jnp.ones_like(w),
      params,
  )


@flax.struct.dataclass
class AverageState:
  """A running average of gradients (VaSSO's d, Friendly SAM's m) and
  whether it has started: the first step sets it to the gradient."""

  average: PyTree
  started: jax.Array

  @classmethod
  def zeros(cls, params: PyTree, config: Any, key: jax.Array) -> 'AverageState':
    """A variant's `init`: zeros, not started."""
    del config, key
    return cls(jax.tree.map(jnp.zeros_like, params), jnp.zeros((), bool))

  def update(
      self, gradient: PyTree, rule: Callable[[jax.Array, jax.Array], jax.Array]
  ) -> 'AverageState':
    """The started state with rule(average, gradient) leaf by leaf, or
    with the gradient itself if this is the first step."""
    average = jax.tree.map(
        lambda m, g: jnp.where(self.started, rule(m, g), g),
        self.average,
        gradient,
    )
    return AverageState(average, jnp.ones((), bool))


def gaussian_like(key: jax.Array, tree: PyTree) -> PyTree:
  """Independent N(0, 1) entries shaped like `tree`.

  Drawn as one flat vector: one random-number program instead of one per
  leaf, which compiles several times faster on a CPU.
  """
  flat, unravel = ravel_pytree(tree)
  return unravel(jax.random.normal(key, flat.shape, flat.dtype))


def ascent_direction(grads: PyTree, point: PyTree, config: Any) -> PyTree:
  """grad L(v) + wd * v with config.sam_weight_decay_in_ascent, else grad L(v).

  With it the L2 penalty (wd/2)||w||^2 is part of the loss whose sharpness
  is measured, as in Foret et al.'s code; without, the base optimizer alone
  applies it, as in Shin et al.'s code.
  """
  if not config.sam_weight_decay_in_ascent or not config.weight_decay:
    return grads
  return jax.tree.map(lambda g, v: g + config.weight_decay * v, grads, point)


def sam_gradient(
    grad_fn: GradFn,
    params: PyTree,
    rho: float | jax.Array,
    ascent_weight_decay: float = 0.0,
    steps: int = 1,
    adaptive_scale: PyTree | None = None,  # pylint: disable=redefined-outer-name
) -> tuple[PyTree, Aux, Aux]:
  r"""Returns grad L(w + e) and the aux outputs of the clean and last passes.

  The ascent direction at a point v is d = grad L(v) + ascent_weight_decay*v:
  with a non-zero `ascent_weight_decay` the L2 penalty (wd/2)||w||^2 is part
  of the loss whose sharpness is measured, as in Foret et al.'s code; with 0
  it is applied only by the base optimizer, as in Shin et al.'s code.

  Args:
    grad_fn: params -> (gradient of the training loss, aux). Called at w,
      at each intermediate ascent point, and at w + e: `steps` + 1 times.
    params: the current weights w.
    rho: radius of the ball.
    ascent_weight_decay: coefficient of the weights in the ascent direction.
    steps: number of ascent steps (1 is SAM).
    adaptive_scale: ASAM's T_w (see `adaptive_scale`), or None for SAM.

  Returns:
    (the SAM gradient at w, aux at w, aux at w + e).
  """

  def direction(grads, point):
    if not ascent_weight_decay:
      return grads
    return jax.tree.map(lambda g, v: g + ascent_weight_decay * v, grads, point)

  grads, clean_aux = grad_fn(params)
  perturbation = ascent_perturbation(
      direction(grads, params), rho / steps, adaptive_scale
  )
  # Further steps are unrolled: `steps` is small, and XLA:CPU runs
  # convolution gradients inside loop bodies much more slowly.
  for _ in range(steps - 1):
    point = jax.tree.map(jnp.add, params, perturbation)
    grads, _ = grad_fn(point)
    step = ascent_perturbation(
        direction(grads, point), rho / steps, adaptive_scale
    )
    perturbation = project_to_ball(
        jax.tree.map(jnp.add, perturbation, step), rho, adaptive_scale
    )
  sam_grads, perturbed_aux = grad_fn(
      jax.tree.map(jnp.add, params, perturbation)
  )
  return sam_grads, clean_aux, perturbed_aux
