"""Training epochs and evaluation for games that step on the host (the
Atari games, rl/atari.py), for every replica side by side.

A rollout alternates, `rl_rollout_steps` times, one compiled call that
draws every replica's actions (rl/agent.py's `draw_actions`, vmapped over
the replicas) with one host step of each replica's environments; the
rollout's advantages and PPO passes then run in one compiled call, as in
the device epoch. The environments train on rewards clipped to their sign
(Mnih et al., 2015) and the returns logged are the games' scores. After
each epoch the environments' snapshot and the running scores go into the
agent's state, so that its checkpoint resumes them exactly.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rl import atari
from rl import environments
from rl import ppo
from runtime import parallel

PyTree = Any


class HostLoop:
  """Each replica's host environments and the compiled steps between
  them, for an Agent (rl/agent.py) whose environment steps on the host."""

  def __init__(self, agent, seeds: list[int]):
    self._agent = agent
    self._config = config = agent.config
    self.games = [
        atari.Games(config.environment, config.rl_num_envs, seed)
        for seed in seeds
    ]
    # Each replica's evaluation games, made when first needed.
    self._evaluation = None
    self._draw = jax.jit(jax.vmap(agent.draw_actions))
    self._learn = jax.jit(jax.vmap(agent.learn_rollout), donate_argnums=0)
    self._metrics = jax.jit(jax.vmap(agent.epoch_metrics))

    def evaluation_draw(params, observations, t):
      """Actions from the policy, drawn with the same keys in every run."""
      logits, _ = agent.network.apply(params, observations)
      key = jax.random.fold_in(jax.random.key(environments.EVALUATION_SEED), t)
      return jax.random.categorical(key, logits)

    self._evaluation_draw = jax.jit(
        jax.vmap(evaluation_draw, in_axes=(0, 0, None))
    )

  def restore(self, states) -> None:
    """The environments as the stacked `states` (a checkpoint's) hold
    them."""
    snapshot = jax.device_get(states.env_state)
    observations = np.asarray(states.observations)
    for r, games in enumerate(self.games):
      games.restore(parallel.replica(snapshot, r), observations[r])

  def _step(self, actions: np.ndarray):
    """One step of every replica's environments: (observations, rewards,
    dones), each [R, N, ...]."""
    stepped = [games.step(a) for games, a in zip(self.games, actions)]
    observations, rewards, ended, cut = (np.stack(x) for x in zip(*stepped))
    return observations, rewards, ended | cut

  def epoch(self, states, rhos) -> tuple[Any, dict[str, Any]]:
    """An epoch of every replica: (states, metrics [R]), as the device
    epoch's."""
    config = self._config
    running = np.asarray(states.episode_returns, np.float32).copy()
    return_sum = np.zeros(len(self.games))
    episodes = np.zeros(len(self.games), np.int32)
    all_parts = []
    for _ in range(self._agent.updates_per_epoch):
      steps = []
      for _ in range(config.rl_rollout_steps):
        observations = states.observations
        states, (actions, log_probs, values) = self._draw(states)
        new_observations, rewards, dones = self._step(np.asarray(actions))
        running += rewards
        return_sum += np.where(dones, running, 0.0).sum(1)
        episodes += dones.sum(1)
        running[dones] = 0.0
        steps.append(
            ppo.Transitions(
                observations,
                actions,
                log_probs,
                values,
                np.sign(rewards),
                dones,
            )
        )
        states = states.replace(observations=jnp.asarray(new_observations))
      # [R, T, N, ...]: the replicas first, as vmap takes them.
      rollout = jax.tree.map(lambda *x: jnp.stack(x, 1), *steps)
      states, parts = self._learn(states, rollout, rhos)
      all_parts.append(parts)
    parts = jax.tree.map(lambda *x: jnp.stack(x, 1), *all_parts)
    snapshots = [games.snapshot() for games in self.games]
    states = states.replace(
        env_state=jax.tree.map(lambda *x: jnp.stack(x), *snapshots),
        episode_returns=jnp.asarray(running),
    )
    return states, {
        **self._metrics(states, parts),
        'return_sum': return_sum,
        'episodes': episodes,
    }

  def evaluate(self, params: PyTree) -> np.ndarray:
    """Each replica's mean score over rl_eval_episodes episodes from fixed
    seeds and action draws (the same for every run), each to its end or
    the game's limit of 108,000 frames: [R]. The replicas' games step
    together, their actions drawn in one call."""
    count = self._config.rl_eval_episodes
    if self._evaluation is None:
      self._evaluation = [
          atari.Games(
              self._config.environment, count, environments.EVALUATION_SEED
          )
          for _ in self.games
      ]
    # The same episodes every time: the evaluation games finish none (an
    # ended one stays ended), so their seeds stay those of episode 0.
    observations = np.stack([games.reset() for games in self._evaluation])
    total = np.zeros((len(self.games), count))
    done = np.zeros((len(self.games), count), bool)
    for t in range(atari.MAX_STEPS):
      if done.all():
        break
      actions = np.asarray(self._evaluation_draw(params, observations, t))
      stepped = [
          games.step(a, active=~d)
          for games, a, d in zip(self._evaluation, actions, done)
      ]
      observations, rewards, ended, cut = (np.stack(x) for x in zip(*stepped))
      total += rewards
      done |= ended | cut
    return total.mean(1)
