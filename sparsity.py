"""Pruning at initialization: random, magnitude and SNIP masks over kernels.

A mask has the structure of the parameters, True where a weight is kept.
Only kernels are pruned, in every model family alike: the weights of Dense
and Conv layers and of the attention projections (query, key, value, out;
in a ViT also its patch embedding, and in every model the classifier). The
biases, normalization parameters and embedding tables (positions, the
class token, tokens) are always kept: they are not connections. Given
`sparsity` s, exactly round(s * n) kernel entries are pruned, where n
counts

* `random`: the entries of each kernel separately (layer-wise, uniform);
* `magnitude`: all kernel entries together, lowest |w| first (global);
* `snip`: all kernel entries together, lowest |w * dL/dw| first (global),
  the connection sensitivity of Lee et al. (2019) on one training batch.

Training keeps pruned weights exactly zero by zeroing them once and masking
every gradient (see `apply_mask`): momentum, weight decay and SAM's
perturbation then never move them, in training or in evaluation.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
# The config keys this module reads.
CONFIG_KEYS = ('sparsity', 'pruner')
PRUNERS = ('random', 'magnitude', 'snip')


def is_kernel(path: tuple[Any, ...]) -> bool:
  """Whether a parameter path ends in a kernel (the only pruned weights)."""
  return getattr(path[-1], 'key', None) == 'kernel'


def _kernels(tree: PyTree) -> list[jax.Array]:
  return [
      x
      for path, x in jax.tree_util.tree_leaves_with_path(tree)
      if is_kernel(path)
  ]


def saliency(
    pruner: str, params: PyTree, key: jax.Array, grads: PyTree | None = None
) -> PyTree:
  """Per-weight scores; the lowest are pruned. SNIP needs `grads`."""
  if pruner == 'random':
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten(
        [jax.random.uniform(k, x.shape) for k, x in zip(keys, leaves)]
    )
  if pruner == 'magnitude':
    return jax.tree.map(jnp.abs, params)
  if pruner == 'snip':
    if grads is None:
      raise ValueError('the snip pruner needs the gradient of a batch')
    return jax.tree.map(lambda w, g: jnp.abs(w * g), params, grads)
  raise ValueError(f'unknown pruner {pruner!r}; known: {", ".join(PRUNERS)}')


def _keep_highest(scores: np.ndarray, num_pruned: int) -> np.ndarray:
  """Boolean mask pruning exactly the `num_pruned` lowest scores."""
  # A stable sort breaks ties by position, so the count is exact even when
  # scores tie (e.g. many zero gradients under SNIP).
  order = np.argsort(scores.ravel(), kind='stable')
  keep = np.ones(scores.size, dtype=bool)
  keep[order[:num_pruned]] = False
  return keep.reshape(scores.shape)


def compute_mask(
    pruner: str,
    sparsity: float,
    params: PyTree,
    key: jax.Array,
    grads: PyTree | None = None,
) -> PyTree | None:
  """Returns the pruning mask for `params`, or None when sparsity is 0."""
  if sparsity == 0:
    return None
  scores = saliency(pruner, params, key, grads)
  paths_and_scores, treedef = jax.tree_util.tree_flatten_with_path(scores)
  kernel_scores = [np.asarray(s) for p, s in paths_and_scores if is_kernel(p)]
  if pruner == 'random':
    kernel_masks = [
        _keep_highest(s, round(sparsity * s.size)) for s in kernel_scores
    ]
  else:
    flat = np.concatenate([s.ravel() for s in kernel_scores])
    keep = _keep_highest(flat, round(sparsity * flat.size))
    splits = np.cumsum([s.size for s in kernel_scores])[:-1]
    kernel_masks = [
        k.reshape(s.shape)
        for k, s in zip(np.split(keep, splits), kernel_scores)
    ]
  kernel_masks = iter(kernel_masks)
  return treedef.unflatten(
      [
          next(kernel_masks) if is_kernel(p) else np.ones(s.shape, dtype=bool)
          for p, s in paths_and_scores
      ]
  )


def apply_mask(tree: PyTree, mask: PyTree | None) -> PyTree:
  """Zeroes the pruned entries of `tree` (parameters or gradients)."""
  if mask is None:
    return tree
  return jax.tree.map(
      lambda x, m: jnp.where(m, x, jnp.zeros_like(x)), tree, mask
  )


def kernel_sparsity(params: PyTree) -> jax.Array:
  """Fraction of kernel entries that are exactly zero (measured sparsity)."""
  kernels = _kernels(params)
  if not kernels:  # A diagonal linear network: nothing is pruned.
    return jnp.float32(0)
  zeros = sum(jnp.sum(k == 0) for k in kernels)
  return zeros / sum(k.size for k in kernels)
