r"""Sharpness measures: worst-case, adaptive and average-case loss increases.

Worst-case sharpness in an L2 ball (Keskar et al., 2017; Foret et al., 2021),
and its adaptive version (Kwon et al., 2021) with an elementwise scale T,

    S(w) = max_{||T^{-1} e||_2 <= rho} L(w + e) - L(w),

where T = 1 gives the plain L2 ball and T = |w| + eta on kernels (ASAM's
T_w, sam.adaptive_scale) makes S nearly invariant to rescalings of the
weights that leave the network's function unchanged (exactly for eta = 0).
The inner problem is solved by projected normalized gradient ascent,

    e_{t+1} = Proj(e_t + a T^2 g_t / ||T g_t||),   g_t = grad L(w + e_t),

from e_0 = 0, with the step a = 2.5 rho / K for K steps (the heuristic of
Madry et al., 2018) and a = rho for one step, which is SAM's perturbation
e = rho T^2 g / ||T g|| (sam.ascent_perturbation; sam.project_to_ball is the
projection). Every iterate lies in the ball, so the largest loss increase
among them is a lower bound on S; that is the value returned.

m-sharpness (Foret et al., 2021; Andriushchenko & Flammarion, 2022) is the
mean of S over groups of m examples, each with its own ascent: see
objective.Objective.group_mean.

Average-case sharpness (Neyshabur et al., 2017) is the expected increase
under Gaussian noise, E_{e ~ N(0, sigma^2 I)} L(w + e) - L(w), estimated by
sampling.

Functions take `loss_fn` (params -> scalar) and `grad_fn` (params -> its
gradient) separately, so a data-parallel gradient can be passed in.
"""

from collections.abc import Callable
from typing import Any

import jax
from jax import lax
import jax.numpy as jnp
import optax

import sam

PyTree = Any
LossFn = Callable[[PyTree], jax.Array]
GradFn = Callable[[PyTree], PyTree]

# Step size of the multi-step ascent, times rho / steps (Madry et al., 2018).
_STEP_FACTOR = 2.5


def worst_case(
    loss_fn: LossFn,
    grad_fn: GradFn,
    params: PyTree,
    rho: float | jax.Array,
    num_steps: int | jax.Array = 1,
    scale: PyTree | None = None,
) -> tuple[jax.Array, PyTree]:
  """Largest loss increase found within ||T^{-1} e|| <= rho by ascent.

  Args:
    loss_fn: params -> loss.
    grad_fn: params -> gradient of the loss.
    params: the weights w.
    rho: radius of the ball.
    num_steps: ascent steps K (1 = SAM's one-step perturbation); may be
      traced, so one compilation serves every K.
    scale: T, shaped like params (e.g. sam.adaptive_scale); None for the
      plain L2 ball.

  Returns:
    (max over the iterates of L(w + e_t) - L(w), the maximizing e_t).
  """
  step_size = jnp.where(
      num_steps == 1, rho, _STEP_FACTOR * rho / jnp.maximum(num_steps, 1)
  )
  base = loss_fn(params)

  def ascend(_, carry):
    perturbation, best, best_perturbation = carry
    gradient = grad_fn(optax.tree_utils.tree_add(params, perturbation))
    perturbation = sam.project_to_ball(
        optax.tree_utils.tree_add(
            perturbation, sam.ascent_perturbation(gradient, step_size, scale)
        ),
        rho,
        scale,
    )
    increase = loss_fn(optax.tree_utils.tree_add(params, perturbation)) - base
    better = increase > best
    return (
        perturbation,
        jnp.where(better, increase, best),
        optax.tree_utils.tree_where(better, perturbation, best_perturbation),
    )

  zeros = optax.tree_utils.tree_zeros_like(params)
  _, best, perturbation = lax.fori_loop(
      0, num_steps, ascend, (zeros, jnp.array(-jnp.inf, base.dtype), zeros)
  )
  return best, perturbation


def average_case_increase(
    loss_fn: LossFn, params: PyTree, key: jax.Array, sigma: float | jax.Array
) -> jax.Array:
  """One draw of L(w + e) - L(w), e ~ N(0, sigma^2 I).

  The mean of independent draws estimates the average-case sharpness (see
  hessian.mean_and_stderr for its standard error).
  """
  noise = sam.gaussian_like(key, params)
  return loss_fn(optax.tree_utils.tree_add_scale(params, sigma, noise)) - (
      loss_fn(params)
  )
