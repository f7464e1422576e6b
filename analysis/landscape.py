r"""Loss landscapes: filter-normalized directions, 1D/2D grids, interpolation.

Li et al. (2018) compare landscapes of different networks along random
directions d rescaled filter by filter to the weights' scale, so that a step
alpha along d changes every filter by the same relative amount:

    d_f <- d_f ||w_f|| / ||d_f||     for each filter f,

where a filter is one output unit of a layer: the slice kernel[..., j] of a
Dense (in, out) or Conv (h, w, in, out) kernel. Biases and BatchNorm
parameters get a zero direction (Li et al. leave them unperturbed). The
grids evaluate L(w + alpha d1 [+ beta d2]); the interpolation evaluates
L((1 - t) w_a + t w_b) between two networks of the same architecture
(Goodfellow et al., 2015), t outside [0, 1] extrapolating.

Each grid point is a full pass over the data: the grids loop over points in
Python, calling `loss_fn` (jit it) once per point, and return its outputs
(e.g. dicts of loss and accuracy) as nested lists.
"""

from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import optax

import sam
import sparsity

PyTree = Any


def filter_normalize(direction: PyTree, params: PyTree) -> PyTree:
  """Rescales each filter of `direction` to the norm of `params`' filter.

  Kernels' filters run along their last (output) axis; other leaves
  (biases, BatchNorm scales and offsets) become zero. A filter whose
  direction is zero stays zero.
  """

  def normalize(path, d, w):
    if not sparsity.is_kernel(path):
      return jnp.zeros_like(d)
    axes = tuple(range(d.ndim - 1))
    d_norm = jnp.sqrt(jnp.sum(d**2, axis=axes, keepdims=True))
    w_norm = jnp.sqrt(jnp.sum(w**2, axis=axes, keepdims=True))
    return d * w_norm / jnp.where(d_norm > 0, d_norm, 1.0)

  return jax.tree_util.tree_map_with_path(normalize, direction, params)


def random_direction(
    key: jax.Array, params: PyTree, mask: PyTree | None = None
) -> PyTree:
  """A Gaussian direction, zero on pruned weights, filter-normalized."""
  return filter_normalize(
      sparsity.apply_mask(sam.gaussian_like(key, params), mask), params
  )


def line(
    loss_fn: Callable[[PyTree], Any],
    params: PyTree,
    direction: PyTree,
    alphas: Iterable[float],
) -> list[Any]:
  """[loss_fn(w + alpha d) for each alpha]."""
  return [
      loss_fn(optax.tree_utils.tree_add_scale(params, alpha, direction))
      for alpha in alphas
  ]


def plane(
    loss_fn: Callable[[PyTree], Any],
    params: PyTree,
    first: PyTree,
    second: PyTree,
    alphas: Iterable[float],
    betas: Iterable[float],
) -> list[list[Any]]:
  """[[loss_fn(w + alpha d1 + beta d2) for each beta] for each alpha]."""
  return [
      line(
          loss_fn,
          optax.tree_utils.tree_add_scale(params, alpha, first),
          second,
          betas,
      )
      for alpha in alphas
  ]


def interpolation(
    loss_fn: Callable[[PyTree], Any],
    start: PyTree,
    end: PyTree,
    ts: Iterable[float],
) -> list[Any]:
  """[loss_fn((1 - t) start + t end) for each t]."""
  return line(loss_fn, start, optax.tree_utils.tree_sub(end, start), ts)
