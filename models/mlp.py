"""Fully connected network whose width is set by `num_neurons`."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# config.mlp_init: Flax's initialization, or that of both papers'
# one-hidden-layer ReLU code (see MLP).
INITS = ('default', 'maennel')


def _random_signs(scale: float) -> nn.initializers.Initializer:
  """+-scale with equal probability."""

  def init(key, shape, dtype=jnp.float32):
    return scale * jax.random.rademacher(key, shape, dtype)

  return init


class MLP(nn.Module):
  """ReLU MLP: flatten, one Dense+ReLU per hidden width, a linear output.

  The width sweep of Shin et al. (2025) scales `num_neurons`, e.g.
  (300, 100) -> (3000, 1000); the parameter count grows with the product of
  consecutive widths.

  `initialization='default'` is Flax's LeCun-normal kernels (times
  `init_scale`) and zero biases. `initialization='maennel'` is that of the
  one-hidden-layer ReLU networks that Andriushchenko & Flammarion (2022)
  and Shin et al. (2025) fit to Maennel et al.'s 12 points (after Blanc et
  al., 2020): hidden kernels +-2.5 with random signs, hidden biases
  N(0, 2.5^2), output kernel N(0, 4^2) and no output bias, each times
  `init_scale`.
  """

  num_neurons: Sequence[int]
  num_classes: int
  initialization: str = 'default'
  init_scale: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train  # No batch-dependent layers.
    x = x.reshape((x.shape[0], -1))
    if self.initialization == 'maennel':
      hidden = dict(
          kernel_init=_random_signs(2.5 * self.init_scale),
          bias_init=nn.initializers.normal(2.5 * self.init_scale),
      )
      output = dict(
          kernel_init=nn.initializers.normal(4.0 * self.init_scale),
          use_bias=False,
      )
    else:
      lecun = nn.initializers.variance_scaling(
          self.init_scale**2, 'fan_in', 'truncated_normal'
      )
      hidden = output = dict(kernel_init=lecun)
    for width in self.num_neurons:
      x = nn.relu(nn.Dense(width, **hidden)(x))
    return nn.Dense(self.num_classes, **output)(x)
