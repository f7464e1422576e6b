"""Label noise: a training split's labels replaced reproducibly (the noisy
set depends only on the key, not on the optimizer, devices or processes)."""

import jax
import numpy as np

from input_pipeline.sources import Split

LABEL_NOISE_TYPES = ('symmetric', 'asymmetric')


def add_label_noise(
    split: Split, num_classes: int, fraction: float, kind: str, key: jax.Array
) -> Split:
  """Replaces the labels of exactly round(fraction * n) training examples.

  Which examples, and their new labels, are drawn for the whole training
  split from `key` alone, so the noisy set is the same for every optimizer,
  device and process count; each process keeps its own (contiguous) share.

  * symmetric: the new label is uniform over the other classes;
  * asymmetric: class c becomes class (c + 1) mod num_classes, a fixed
    permutation without fixed points (the "pair flipping" of Han et al.,
    2018).
  """
  if kind not in LABEL_NOISE_TYPES:
    raise ValueError(f'unknown label noise type {kind!r}')
  size = len(split)
  offset, total = jax.process_index() * size, jax.process_count() * size
  which_key, class_key = jax.random.split(key)
  chosen = np.asarray(jax.random.permutation(which_key, total))[
      : round(fraction * total)
  ]
  flipped = np.zeros(total, bool)
  flipped[chosen] = True
  flipped = flipped[offset : offset + size]
  if kind == 'symmetric':
    shift = np.asarray(jax.random.randint(class_key, (total,), 1, num_classes))[
        offset : offset + size
    ]
  else:
    shift = 1
  noisy = (split.labels + shift) % num_classes
  return Split(
      split.images,
      np.where(flipped, noisy, split.labels).astype(np.int32),
      flipped,
  )
