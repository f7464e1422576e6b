r"""The Hessian, sharpness and loss landscape of an agent's PPO loss: what
analyze.py measures for a run with `environment` set.

The function studied is the PPO loss (rl/ppo.py) of the actor-critic on a
fixed rollout D of analysis.num_examples transitions:

    L(w) = -E_D[min(r A, clip(r) A)] + c_v E_D[max(...)] / 2 - c_e E_D[H]

D is collected once from the checkpoint: its rl_num_envs environments
continue from the states the run stopped in for num_examples / rl_num_envs
steps, actions drawn from the checkpoint's policy with keys from
analysis.seed, then GAE gives the advantages A (normalized over D) and the
returns. The old log-probabilities and values are the checkpoint's, so at
the checkpoint's weights every ratio r is 1 and no clipping is active: the
Hessian there is that of -E[r A] + c_v E[(V - R)^2] / 2 - c_e E[H], the
curvature of the objective each PPO update starts from. D is shuffled once
(analysis.seed), so m-sharpness's groups of analysis.m consecutive
transitions are random minibatches, their advantages normalized per group
as PPO normalizes a minibatch's.

The loss is taken over all of D at once, on one device (analysis.batch_size
is not used): rollouts of an agent's size fit.
"""

from collections.abc import Callable
from typing import Any

import flax
import jax
from jax import lax
import jax.numpy as jnp
import ml_collections
import numpy as np

from analysis import hessian
from analysis import measure
from configuration import config_util
from rl import agent as agents
from rl import atari
from runs import run_state
from runs import rundir
from runtime import parallel

PyTree = Any
# The parts that apply to a PPO loss; the others need labelled examples
# (stability's per-example Hessians) or a regression run.
PARTS = ('hessian', 'sharpness', 'landscape')


@flax.struct.dataclass
class PolicyState:
  """What the measurements read of an agent: its weights and updates."""

  params: PyTree
  step: jax.Array  # Optimizer updates so far.
  mask: PyTree = None  # Agents are not pruned.


def check(config: ml_collections.ConfigDict, interpolate_to: str | None):
  """Raises ConfigError for analysis settings an agent cannot take."""
  settings = config.analysis
  config_util.require(
      not atari.is_atari(config.environment),
      f'{config.environment} steps on the host; analyze.py measures agents '
      'of gymnax environments, whose rollouts it collects inside jit',
  )
  config_util.require(
      set(settings.parts) <= set(PARTS),
      f'analysis.parts {tuple(settings.parts)}: the PPO loss of an agent is '
      f'measured by {", ".join(PARTS)}',
  )
  config_util.require(
      settings.num_examples % config.rl_num_envs == 0,
      f'analysis.num_examples ({settings.num_examples} transitions) must be '
      f'a multiple of rl_num_envs ({config.rl_num_envs}): the rollout steps '
      'every environment alike',
  )
  config_util.require(
      settings.m == 0
      or (settings.m >= 1 and settings.num_examples % settings.m == 0),
      f'analysis.m ({settings.m}) must be 0 (off) or divide '
      f'analysis.num_examples ({settings.num_examples})',
  )
  config_util.require(
      interpolate_to is None,
      '--interpolate_to is for supervised runs; an agent is analyzed alone',
  )


class PPOObjective:
  """L, its gradient and HVP on a rollout: objective.Objective's methods
  for measure.Analyzer. Every function takes (state, params, data, ...)."""

  def __init__(self, agent: agents.Agent):
    self._agent = agent

  def analysis_state(self, state: PolicyState) -> PolicyState:
    return state

  def metrics(self, state, params, data) -> dict[str, jax.Array]:
    """{'loss': L(w), and its parts: actor_loss, value_loss, entropy,
    clipped_fraction}."""
    del state
    loss, parts = self._agent.loss(params, *data)
    return {'loss': loss, **parts}

  def loss(self, state, params, data) -> jax.Array:
    return self.metrics(state, params, data)['loss']

  def gradient(self, state, params, data) -> PyTree:
    return jax.grad(lambda p: self.loss(state, p, data))(params)

  def hvp(self, state, params, data, vector) -> PyTree:
    return hessian.hvp(lambda p: self.loss(state, p, data), params, vector)

  def group_mean(
      self,
      fn: Callable[[Callable[[PyTree], jax.Array], PyTree], jax.Array],
      state,
      params,
      data,
      group_size: int,
  ) -> jax.Array:
    """Mean over groups of `group_size` consecutive transitions of
    fn(the group's PPO loss, params)."""
    grouped = jax.tree.map(
        lambda x: x.reshape((-1, group_size) + x.shape[1:]), data
    )
    return jnp.mean(
        lax.map(
            lambda group: fn(lambda p: self.loss(state, p, group), params),
            grouped,
        )
    )


def rollout(
    agent: agents.Agent,
    state: agents.AgentState,
    num_examples: int,
    seed: int,
    compiled: Callable[..., Any] | None = None,
):
  """D: `num_examples` transitions from one replica's checkpointed `state`
  (advantages and returns by GAE), shuffled; actions drawn with `seed`.
  `compiled`: jit of agent.rollout, to share between replicas."""
  key = jax.random.key(seed)
  state = state.replace(key=jax.random.key_data(key))
  compiled = compiled or jax.jit(agent.rollout, static_argnums=1)
  _, transitions, advantages, returns, _ = compiled(
      state, num_examples // agent.config.rl_num_envs
  )
  flat = jax.tree.map(
      lambda x: x.reshape((-1,) + x.shape[2:]),
      (transitions, advantages, returns),
  )
  order = jax.random.permutation(jax.random.fold_in(key, 1), num_examples)
  return jax.tree.map(lambda x: x[order], flat)


def load(
    config: ml_collections.ConfigDict,
    workdir,
    agent: agents.Agent | None = None,
) -> tuple[agents.AgentState, dict[str, Any]]:
  """The newest checkpoint of the agent's run in `workdir` (trained by
  `agent`, made from `config` if not given): (replicas' states stacked,
  progress); ConfigError if none restores."""
  agent = agent or agents.Agent(config)
  seeds = [c.seed for c in run_state.replica_configs(config)]
  restored = rundir.Checkpointer(workdir, 1, read_only=True).restore(
      agent.initial_states(seeds)
  )
  if restored is None:
    raise config_util.ConfigError(f'{workdir} has no checkpoint')
  return restored


def replica_analyzers(
    config: ml_collections.ConfigDict, workdir
) -> tuple[list[PolicyState], list[measure.Analyzer], dict[str, Any]]:
  """Each replica's weights and an Analyzer of its PPO loss on its own
  rollout (on the first device); and the checkpoint's progress."""
  agent = agents.Agent(config)
  states, progress = load(config, workdir, agent)
  states = jax.device_put(states, jax.devices()[0])
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), (parallel.AXIS,))
  objective = PPOObjective(agent)
  compiled = jax.jit(agent.rollout, static_argnums=1)
  policies, analyzers = [], []
  for replica in range(config.num_replicas):
    state = parallel.replica(states, replica)
    data = rollout(
        agent,
        state,
        config.analysis.num_examples,
        config.analysis.seed,
        compiled,
    )
    policies.append(PolicyState(params=state.params, step=state.step))
    analyzers.append(measure.Analyzer(config, mesh, (objective, data)))
  return policies, analyzers, progress
