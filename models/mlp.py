"""Fully connected network whose width is set by `num_neurons`."""

from collections.abc import Sequence

import flax.linen as nn
import jax


class MLP(nn.Module):
  """ReLU MLP: flatten, one Dense+ReLU per hidden width, a linear classifier.

  The width sweep of Shin et al. (2025) scales `num_neurons`, e.g.
  (300, 100) -> (3000, 1000); the parameter count grows with the product of
  consecutive widths.
  """

  num_neurons: Sequence[int]
  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train  # No batch-dependent layers.
    x = x.reshape((x.shape[0], -1))
    for width in self.num_neurons:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.num_classes)(x)
