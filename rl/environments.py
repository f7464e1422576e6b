"""Environments by name (config.environment), from gymnax (Lange, 2022):
JAX-native, so that whole rollouts run inside `jit` (CartPole-v1, Acrobot-v1,
the MinAtar games Breakout-MinAtar, SpaceInvaders-MinAtar, Asterix-MinAtar,
Freeway-MinAtar, Seaquest-MinAtar, ...), and the Atari games of the Arcade
Learning Environment as 'ALE/NAME-v5' (rl/atari.py), which step on the
host. Discrete actions only."""

from collections.abc import Callable
import dataclasses
from typing import Any

import jax
from jax import lax
import jax.numpy as jnp

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


def evaluation_return(
    env: Environment,
    policy_logits: Callable[[jax.Array], jax.Array],
    count: int,
) -> jax.Array:
  """The mean undiscounted return of `count` episodes of the policy whose
  action logits `policy_logits` gives for a batch of observations, from
  fixed environment seeds and action draws (EVALUATION_SEED: the same for
  every run), each to its end or the environment's time limit."""
  keys = jax.random.split(jax.random.key(EVALUATION_SEED), count)
  observations, env_state = jax.vmap(env.env.reset, (0, None))(keys, env.params)

  def running(carry):
    t, _, _, _, done = carry
    return (t < env.max_steps) & ~jnp.all(done)

  def step(carry):
    t, observations, env_state, total, done = carry
    step_keys = jax.vmap(lambda k: jax.random.fold_in(k, t))(keys)
    action_keys, env_keys = jnp.moveaxis(
        jax.vmap(jax.random.split)(step_keys), 1, 0
    )
    actions = jax.vmap(jax.random.categorical)(
        action_keys, policy_logits(observations)
    )
    observations, env_state, rewards, terminated, truncated, _ = jax.vmap(
        env.env.step, (0, 0, 0, None)
    )(env_keys, env_state, actions, env.params)
    total = total + jnp.where(done, 0.0, rewards)
    return t + 1, observations, env_state, total, done | terminated | truncated

  carry = (
      jnp.zeros((), jnp.int32),
      observations,
      env_state,
      jnp.zeros(count),
      jnp.zeros(count, bool),
  )
  return lax.while_loop(running, step, carry)[3].mean()
