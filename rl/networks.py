"""Actor-critic networks: logits over the actions and the state's value.

Both initialize as CleanRL's and PureJaxRL's PPO do: orthogonal weights
with gain sqrt(2) in the hidden layers, 0.01 for the policy's logits and 1
for the value, zero biases.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_HIDDEN = nn.initializers.orthogonal(np.sqrt(2.0))
_POLICY = nn.initializers.orthogonal(0.01)
_VALUE = nn.initializers.orthogonal(1.0)


def _heads(
    policy_features: jax.Array, value_features: jax.Array, num_actions: int
) -> tuple[jax.Array, jax.Array]:
  """(logits [B, num_actions], values [B])."""
  logits = nn.Dense(num_actions, kernel_init=_POLICY, name='policy')(
      policy_features
  )
  value = nn.Dense(1, kernel_init=_VALUE, name='value')(value_features)
  return logits, value[..., 0]


def _scaled(observations: jax.Array) -> jax.Array:
  """Frames of bytes (Atari's) in [0, 1]; other observations as they are
  (MinAtar's are 0/1 already)."""
  if observations.dtype == jnp.uint8:
    return observations / 255.0
  return observations


class ActorCriticMLP(nn.Module):
  """For vector observations (frames are flattened, bytes scaled to
  [0, 1]): separate tanh towers of widths `num_neurons` for the policy and
  the value (PureJaxRL's CartPole network with num_neurons=(64, 64))."""

  num_neurons: Sequence[int]
  num_actions: int

  @nn.compact
  def __call__(self, observations: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = _scaled(observations).reshape(observations.shape[0], -1)
    towers = []
    for tower in ('actor', 'critic'):
      h = x
      for i, width in enumerate(self.num_neurons):
        h = jnp.tanh(
            nn.Dense(width, kernel_init=_HIDDEN, name=f'{tower}_{i}')(h)
        )
      towers.append(h)
    return _heads(*towers, self.num_actions)


class NatureCNN(nn.Module):
  """For frames (height, width, channels): the DQN network of Mnih et al.
  (2015), convolutions of 32, 64 and 64 filters (8x8 stride 4, 4x4 stride 2,
  3x3 stride 1) and a dense layer of 512 units, ReLU, a shared torso under
  the policy and value heads (CleanRL's Atari PPO). `width` scales every
  layer (Shin et al.'s Atari panel uses 0.5, 1, 1.5 and 2: 0.4M to 6.7M
  parameters on 84x84x4 frames).

  Frames of bytes (Atari's) are scaled to [0, 1] first. The convolutions
  are unpadded on frames of 36 pixels or more (84x84:
  1.7M parameters at width 1, as in the paper) and padded ('SAME') on
  smaller ones (MinAtar's 10x10), where unpadded 8x8 kernels would leave
  nothing to convolve.
  """

  width: float
  num_actions: int

  @nn.compact
  def __call__(self, frames: jax.Array) -> tuple[jax.Array, jax.Array]:
    padding = 'VALID' if min(frames.shape[1:3]) >= 36 else 'SAME'
    scale = lambda n: max(1, int(round(n * self.width)))
    x = _scaled(frames)
    for filters, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
      x = nn.Conv(
          scale(filters),
          (kernel, kernel),
          (stride, stride),
          padding=padding,
          kernel_init=_HIDDEN,
      )(x)
      x = nn.relu(x)
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(scale(512), kernel_init=_HIDDEN)(x))
    return _heads(x, x, self.num_actions)


NETWORKS = ('mlp', 'nature_cnn')


def make(name: str, num_neurons: Sequence[int], width: float, num_actions: int):
  """The network `name` (config.rl_network)."""
  if name == 'nature_cnn':
    return NatureCNN(width, num_actions)
  return ActorCriticMLP(tuple(num_neurons), num_actions)
