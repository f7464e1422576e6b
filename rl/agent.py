"""The agent's computation: an epoch of PPO (rollouts of vmapped gymnax
environments, advantages, minibatch updates with the base optimizer or a
SAM variant on the PPO loss) and the evaluation episodes, for every replica
side by side, each in one compiled call (see rl_train.py); for games that
step on the host (Atari), rl/host.py's loop around the same compiled
steps."""

from collections.abc import Callable
import functools
from typing import Any

import flax
import jax
from jax import lax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
import ml_collections
import optax

import optimizers
from rl import environments
from rl import host
from rl import networks
from rl import ppo
from runtime import parallel
import sam

PyTree = Any


@flax.struct.dataclass
class AgentState:
  """One replica's (or, stacked, every replica's) training state."""

  params: PyTree
  opt_state: PyTree
  sam_state: PyTree
  step: jax.Array  # Optimizer updates so far.
  env_state: PyTree
  observations: jax.Array  # [rl_num_envs, ...]
  episode_returns: jax.Array  # [rl_num_envs], of the running episodes.
  key: jax.Array  # Raw key data (checkpoints hold arrays).


def _next_key(state: AgentState) -> tuple[AgentState, jax.Array]:
  key, draw = jax.random.split(jax.random.wrap_key_data(state.key))
  return state.replace(key=jax.random.key_data(key)), draw


class Agent:
  """What every replica shares: the environment, network, optimizer and
  schedule, and the compiled epoch and evaluation."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.env = environments.make(config.environment)
    self.network = networks.make(
        config.rl_network,
        config.num_neurons,
        config.rl_width,
        self.env.num_actions,
    )
    rollout = config.rl_num_envs * config.rl_rollout_steps
    self.updates_per_epoch = config.rl_env_steps_per_epoch // rollout
    self.steps_per_epoch = (
        self.updates_per_epoch * config.ppo_epochs * config.ppo_minibatches
    )
    self.schedule = optimizers.create_learning_rate_schedule(
        config, self.steps_per_epoch
    )
    self.tx = optax.chain(
        optax.clip_by_global_norm(config.ppo_max_grad_norm),
        optimizers.create_optimizer(config, self.schedule),
    )
    self.variant = (
        sam.get(config.sam_variant) if config.optimizer == 'sam' else None
    )
    # One replica's states split over the devices (see `place`), or None.
    self._shardings = None
    # The host environments' loop (see initial_states), or None.
    self._host = None

  def initial_state(self, seed: int, games=None) -> AgentState:
    """A replica's state before training, from its seed (and its host
    environments, `games`, for a game that steps on the host)."""
    init_key, reset_key, run_key = jax.random.split(jax.random.key(seed), 3)
    if games is None:
      observations, env_state = jax.vmap(self.env.env.reset, (0, None))(
          jax.random.split(reset_key, self.config.rl_num_envs),
          self.env.params,
      )
    else:
      observations, env_state = jnp.asarray(games.reset()), games.snapshot()
    params = self.network.init(init_key, observations)
    sam_state = None
    if self.variant is not None and self.variant.init is not None:
      sam_state = self.variant.init(
          params,
          self.config,
          sam.variant_key(seed),
      )
    return AgentState(
        params=params,
        opt_state=self.tx.init(params),
        sam_state=sam_state,
        step=jnp.zeros((), jnp.int32),
        env_state=env_state,
        observations=observations,
        episode_returns=jnp.zeros(self.config.rl_num_envs),
        key=jax.random.key_data(run_key),
    )

  def initial_states(self, seeds: list[int]) -> AgentState:
    """The states of replicas of `seeds` before training, stacked (for a
    game that steps on the host, with its environments, which the
    epochs then step)."""
    games = [None] * len(seeds)
    if self.env.host:
      self._host = host.HostLoop(self, seeds)
      games = self._host.games
    return jax.tree.map(
        lambda *x: jnp.stack(x),
        *[self.initial_state(s, g) for s, g in zip(seeds, games)],
    )

  def resume(self, states: AgentState) -> None:
    """Puts host environments in the state restored `states` hold."""
    if self._host is not None:
      self._host.restore(states)

  def place(self, states: AgentState) -> tuple[AgentState, str]:
    """The replicas' stacked `states` on the devices, and a phrase saying
    how.

    Several replicas are spread over the devices when their number divides
    them (each device trains its own). One replica on several devices
    whose number divides rl_num_envs is data-parallel: its environments'
    states and observations are split over the devices, the rest
    replicated, and XLA partitions the epoch (each device steps its
    environments; the minibatches, drawn from the whole rollout, are
    gathered), so that it computes what one device would. Otherwise the
    states stay on the default device.
    """
    replicas, devices = states.step.shape[0], jax.device_count()

    def count(n: int, noun: str) -> str:
      return f'{n} {noun}' + ('s' if n > 1 else '')

    self._shardings = None
    if self.env.host:
      # Committed to the device, as the epoch's outputs are (see
      # parallel.spread_replicas).
      states = jax.device_put(states, jax.devices()[0])
      return states, (
          f'{count(replicas, "replica")} on 1 device, the games stepped on '
          'the host'
      )
    if replicas > 1 or devices == 1 or self.config.rl_num_envs % devices:
      states = parallel.spread_replicas(states, replicas)
      used = len(states.step.sharding.device_set)
      note = (
          ''
          if used == devices
          else ' (replicas spread over the devices when their number divides)'
      )
      return states, (
          f'{count(replicas, "replica")} on {used} of '
          f'{count(devices, "device")}{note}'
      )
    mesh = parallel.create_mesh()
    by_env = jax.sharding.NamedSharding(mesh, P(None, parallel.AXIS))
    replicated = jax.sharding.NamedSharding(mesh, parallel.REPLICATED)
    self._shardings = jax.tree.map(lambda _: replicated, states).replace(
        env_state=jax.tree.map(lambda _: by_env, states.env_state),
        observations=by_env,
        episode_returns=by_env,
    )
    return jax.device_put(states, self._shardings), (
        f'1 replica, its {self.config.rl_num_envs} environments split over '
        f'{devices} devices'
    )

  def _act(self, state: AgentState, _):
    """One step of every environment, actions drawn from the policy."""
    state, key = _next_key(state)
    action_key, step_key = jax.random.split(key)
    logits, values = self.network.apply(state.params, state.observations)
    actions = jax.random.categorical(action_key, logits)
    log_probs = ppo.action_log_probs(logits, actions)
    observations, env_state, rewards, terminated, truncated, _ = jax.vmap(
        self.env.env.step, (0, 0, 0, None)
    )(
        jax.random.split(step_key, self.config.rl_num_envs),
        state.env_state,
        actions,
        self.env.params,
    )
    # An episode cut by the time limit ends too (see rl/ppo.py).
    dones = terminated | truncated
    returns = state.episode_returns + rewards
    transition = ppo.Transitions(
        state.observations, actions, log_probs, values, rewards, dones
    )
    finished = (jnp.where(dones, returns, 0.0).sum(), dones.sum())
    state = state.replace(
        env_state=env_state,
        observations=observations,
        episode_returns=jnp.where(dones, 0.0, returns),
    )
    return state, (transition, finished)

  def _minibatch_update(self, rho, state: AgentState, minibatch):
    """One optimizer step on a minibatch's PPO loss (SAM's ascent first,
    with a variant)."""
    transitions, advantages, returns = minibatch
    config = self.config

    def grad_fn(params):
      (value, parts), gradient = jax.value_and_grad(self.loss, has_aux=True)(
          params, transitions, advantages, returns
      )
      return gradient, {'loss': value, **parts}

    learning_rate = self.schedule(state.step)
    sam_state = state.sam_state
    if self.variant is None:
      gradient, parts = grad_fn(state.params)
    else:
      result = self.variant.gradient(
          sam.Oracle(
              grad_fn=grad_fn,
              params=state.params,
              rho=sam.scheduled_rho(config, rho, learning_rate),
              config=config,
              step=state.step,
              learning_rate=learning_rate,
              state=sam_state,
              steps_per_epoch=self.steps_per_epoch,
          )
      )
      gradient, parts, sam_state = result.descent, result.clean, result.state
    updates, opt_state = self.tx.update(gradient, state.opt_state, state.params)
    state = state.replace(
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
        sam_state=sam_state,
        step=state.step + 1,
    )
    return state, parts

  def _learn(self, state: AgentState, rollout, advantages, returns, rho):
    """ppo_epochs passes over the rollout in shuffled minibatches."""
    flat = lambda x: x.reshape((-1,) + x.shape[2:])
    data = jax.tree.map(flat, (rollout, advantages, returns))

    def one_pass(state, _):
      state, key = _next_key(state)
      order = jax.random.permutation(key, advantages.size)
      minibatches = jax.tree.map(
          lambda x: x[order].reshape(
              (self.config.ppo_minibatches, -1) + x.shape[1:]
          ),
          data,
      )
      return lax.scan(
          functools.partial(self._minibatch_update, rho), state, minibatches
      )

    return lax.scan(one_pass, state, None, length=self.config.ppo_epochs)

  def rollout(self, state: AgentState, num_steps: int):
    """`num_steps` steps of every environment from `state`, and their
    advantages: (state after them, Transitions [T, N, ...], advantages and
    returns [T, N], (sum, count) of the returns of the episodes that
    ended, each [T])."""
    state, (transitions, finished) = lax.scan(
        self._act, state, None, length=num_steps
    )
    advantages, returns = self._advantages(state, transitions)
    return state, transitions, advantages, returns, finished

  def _advantages(self, state: AgentState, transitions: ppo.Transitions):
    """GAE's advantages and returns [T, N] of a rollout that left the
    environments at `state`'s observations."""
    _, last_values = self.network.apply(state.params, state.observations)
    return ppo.generalized_advantages(
        transitions.rewards,
        transitions.values,
        transitions.dones,
        last_values,
        self.config.ppo_gamma,
        self.config.ppo_gae_lambda,
    )

  def draw_actions(self, state: AgentState):
    """Actions for the observations of `state` from the policy: (state,
    (actions, their log-probabilities, the values)), for host steps."""
    state, key = _next_key(state)
    logits, values = self.network.apply(state.params, state.observations)
    actions = jax.random.categorical(key, logits)
    return state, (actions, ppo.action_log_probs(logits, actions), values)

  def learn_rollout(self, state: AgentState, transitions, rho):
    """The PPO passes over a host rollout [T, N, ...] that left the
    environments at `state`'s observations: (state, parts)."""
    advantages, returns = self._advantages(state, transitions)
    return self._learn(state, transitions, advantages, returns, rho)

  def loss(self, params: PyTree, transitions, advantages, returns):
    """(The PPO loss of a batch of flat transitions at `params`, its
    parts)."""
    logits, values = self.network.apply(params, transitions.observations)
    return ppo.ppo_loss(
        logits,
        values,
        transitions,
        advantages,
        returns,
        self.config.ppo_clip,
        self.config.ppo_value_coef,
        self.config.ppo_entropy_coef,
    )

  def _update(self, rho, carry, _):
    """A rollout, its advantages and the PPO passes over it."""
    state, finished = carry
    state, rollout, advantages, returns, (return_sum, count) = self.rollout(
        state, self.config.rl_rollout_steps
    )
    state, parts = self._learn(state, rollout, advantages, returns, rho)
    finished = (finished[0] + return_sum.sum(), finished[1] + count.sum())
    return (state, finished), parts

  def _epoch(self, state: AgentState, rho) -> tuple[AgentState, dict]:
    (state, (return_sum, episodes)), parts = lax.scan(
        functools.partial(self._update, rho),
        (state, (jnp.zeros(()), jnp.zeros((), jnp.int32))),
        None,
        length=self.updates_per_epoch,
    )
    return state, {
        **self.epoch_metrics(state, parts),
        'return_sum': return_sum,
        'episodes': episodes,
    }

  def epoch_metrics(self, state: AgentState, parts: dict) -> dict:
    """The means of an epoch's minibatch `parts`, and whether its losses
    and the weights it ends with are finite."""
    metrics = {name: value.mean() for name, value in parts.items()}
    metrics['finite'] = jnp.all(jnp.isfinite(parts['loss'])) & jnp.all(
        jnp.array(
            [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(state.params)]
        )
    )
    return metrics

  def _evaluate(self, params: PyTree) -> jax.Array:
    """The evaluation episodes' mean return of the policy at `params`."""
    return environments.evaluation_return(
        self.env,
        lambda observations: self.network.apply(params, observations)[0],
        self.config.rl_eval_episodes,
    )

  @functools.cached_property
  def train_epoch(self) -> Callable[..., tuple[AgentState, dict]]:
    """(stacked states, rhos [R]) -> (states, metrics [R]) after an epoch,
    the states placed as `place` placed them (call it first)."""
    if self._host is not None:
      return self._host.epoch

    def epoch(states, rhos):
      if rhos.shape[0] > 1:
        return jax.vmap(self._epoch)(states, rhos)
      # One replica: the unbatched program (XLA:CPU runs a batch of one
      # about 6% slower).
      states, metrics = jax.tree.map(
          lambda x: x[None],
          self._epoch(parallel.replica(states, 0), rhos[0]),
      )
      if self._shardings is not None:  # Split as `place` put it.
        states = lax.with_sharding_constraint(states, self._shardings)
      return states, metrics

    return jax.jit(epoch, donate_argnums=0)

  @functools.cached_property
  def evaluate(self) -> Callable[[PyTree], jax.Array]:
    """Stacked params -> the evaluation episodes' mean return [R]."""
    if self._host is not None:
      return self._host.evaluate
    return jax.jit(jax.vmap(self._evaluate))
