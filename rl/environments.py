"""Environments by name (config.environment), from gymnax (Lange, 2022):
JAX-native, so that whole rollouts run inside `jit` (CartPole-v1, Acrobot-v1,
the MinAtar games Breakout-MinAtar, SpaceInvaders-MinAtar, Asterix-MinAtar,
Freeway-MinAtar, Seaquest-MinAtar, ...), and the Atari games of the Arcade
Learning Environment as 'ALE/NAME-v5' (rl/atari.py), which step on the
host. Discrete actions only."""

import dataclasses
from typing import Any

from configuration import config_util
from rl import atari

INSTALL = 'pip install "gymnax>=1.0.1"'
# The evaluation episodes' environment seeds and action draws, the same for
# every run.
EVALUATION_SEED = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Environment:
  """A gymnax environment and what the agent needs to know of it."""

  name: str
  env: Any  # gymnax.environments.environment.Environment
  params: Any  # Its EnvParams.
  num_actions: int
  observation_shape: tuple[int, ...]
  # The longest episode (the environment's time limit).
  max_steps: int
  # It steps on the host (the Atari games, rl/atari.py), not inside jit.
  host: bool = False

  def is_frames(self) -> bool:
    """Whether observations are (height, width, channels) frames."""
    return len(self.observation_shape) == 3


def make(name: str) -> Environment:
  """The environment `name`; ConfigError naming the install, the known
  names, or why it cannot be used."""
  if atari.is_atari(name):
    env = atari.make(name)
    num_actions = int(env.action_space.n)
    env.close()
    return Environment(
        name=name,
        env=None,
        params=None,
        num_actions=num_actions,
        observation_shape=(atari.SCREEN, atari.SCREEN, atari.STACK),
        max_steps=atari.MAX_STEPS,
        host=True,
    )
  try:
    import gymnax  # pylint: disable=g-import-not-at-top
    from gymnax.environments import spaces  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise config_util.ConfigError(
        f'environment={name!r} needs gymnax: {INSTALL}'
    ) from None
  config_util.require(
      name in gymnax.registered_envs,
      f'unknown environment {name!r}; gymnax has: '
      f'{", ".join(gymnax.registered_envs)}',
  )
  env, params = gymnax.make(name)
  action_space = env.action_space(params)
  config_util.require(
      isinstance(action_space, spaces.Discrete),
      f'environment {name!r} has continuous actions; PPO here takes '
      'discrete ones (CartPole-v1, Acrobot-v1, the MinAtar games)',
  )
  return Environment(
      name=name,
      env=env,
      params=params,
      num_actions=int(action_space.n),
      observation_shape=tuple(env.observation_space(params).shape),
      max_steps=int(params.max_steps_in_episode),
  )
