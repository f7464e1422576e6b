r"""Proximal policy optimization's objective, as pure functions over arrays.

Generalized advantage estimation (Schulman et al., 2016, "High-Dimensional
Continuous Control Using Generalized Advantage Estimation"), for a rollout of
T steps of N environments, with d_t = 1 where the episode ended at step t:

    delta_t = r_t + gamma (1 - d_t) V(s_{t+1}) - V(s_t)
    A_t     = delta_t + gamma lambda (1 - d_t) A_{t+1},      R_t = A_t + V(s_t)

The clipped surrogate (Schulman et al., 2017, "Proximal Policy Optimization
Algorithms"), with r_t = pi(a_t|s_t) / pi_old(a_t|s_t) and the advantages
normalized over the minibatch:

    L = -E[min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)]
        + c_v E[max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)] / 2
        - c_e E[H(pi(.|s_t))]

as in CleanRL's and PureJaxRL's PPO (the value loss clipped the same way).
An episode cut by the environment's time limit counts as ended (no bootstrap
from the state it was cut at), as in both.
"""

from typing import Any, NamedTuple

import jax
from jax import lax
import jax.numpy as jnp


class Transitions(NamedTuple):
  """A rollout's steps, each field [T, N, ...] (or flattened to [B, ...])."""

  observations: jax.Array
  actions: jax.Array
  log_probs: jax.Array  # log pi_old(a|s) when the action was drawn.
  values: jax.Array  # V_old(s).
  rewards: jax.Array
  dones: jax.Array  # The episode ended at this step.


def action_log_probs(logits: jax.Array, actions: jax.Array) -> jax.Array:
  """log pi(a|s) of the taken `actions` [B] under `logits` [B, A]."""
  return jnp.take_along_axis(
      jax.nn.log_softmax(logits), actions[:, None].astype(jnp.int32), axis=-1
  )[:, 0]


def generalized_advantages(
    rewards: jax.Array,
    values: jax.Array,
    dones: jax.Array,
    last_value: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
  """(advantages A_t, returns A_t + V(s_t)), each [T, N], from [T, N]
  rewards, values and dones and the value [N] of the state after the last
  step; a reverse scan over time."""

  def backwards(carry, step):
    advantage, next_value = carry
    reward, value, done = step
    live = 1.0 - done
    delta = reward + gamma * live * next_value - value
    advantage = delta + gamma * gae_lambda * live * advantage
    return (advantage, value), advantage

  _, advantages = lax.scan(
      backwards,
      (jnp.zeros_like(last_value), last_value),
      (rewards, values, dones.astype(values.dtype)),
      reverse=True,
      unroll=16,  # As PureJaxRL's: fewer loop iterations on CPU.
  )
  return advantages, advantages + values


def ppo_loss(
    logits: jax.Array,
    values: jax.Array,
    batch: Transitions,
    advantages: jax.Array,
    returns: jax.Array,
    clip: float,
    value_coef: float,
    entropy_coef: float,
) -> tuple[jax.Array, dict[str, Any]]:
  """The PPO loss of a minibatch, from the network's outputs on its
  observations (`logits` [B, A], `values` [B]); and its parts."""
  ratio = jnp.exp(action_log_probs(logits, batch.actions) - batch.log_probs)
  normalized = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
  actor_loss = -jnp.minimum(
      ratio * normalized, jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * normalized
  ).mean()
  clipped_values = batch.values + jnp.clip(values - batch.values, -clip, clip)
  value_loss = (
      0.5
      * jnp.maximum(
          jnp.square(values - returns), jnp.square(clipped_values - returns)
      ).mean()
  )
  log_policy = jax.nn.log_softmax(logits)
  entropy = -(jnp.exp(log_policy) * log_policy).sum(-1).mean()
  loss = actor_loss + value_coef * value_loss - entropy_coef * entropy
  return loss, {
      'actor_loss': actor_loss,
      'value_loss': value_loss,
      'entropy': entropy,
      # The fraction of examples whose ratio lies outside [1 - eps, 1 + eps]
      # (CleanRL's clipfrac).
      'clipped_fraction': jnp.mean(jnp.abs(ratio - 1.0) > clip),
  }
