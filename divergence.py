"""Divergence: a run whose training loss (or weights) became non-finite,
and, with several replicas, the one that diverged frozen while the others
train on."""

from collections.abc import Callable
import functools
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from runs import run_state
from runtime import parallel

PyTree = Any


class Diverged(Exception):
  """The training loss (or the weights) became non-finite. The last finite
  checkpoint is kept and summary.json says "status": "diverged".

  With several replicas, those that diverged are frozen at their last finite
  state and the others train on; Diverged is raised once they have finished
  (`others_finished`), or when no replica is left.
  """

  def __init__(
      self,
      epoch: int,
      replicas: list[int],
      num_replicas: int,
      others_finished: bool = False,
  ):
    super().__init__(epoch, replicas)
    self.epoch = epoch
    self.replicas = replicas
    self.num_replicas = num_replicas
    self.others_finished = others_finished
    self.kept_step: int | None = None  # The last finite checkpoint's step.

  def __str__(self) -> str:
    which = (
        f' (replica {", ".join(map(str, self.replicas))})'
        if self.num_replicas > 1
        else ''
    )
    if self.others_finished:
      return (
          f'the training loss became non-finite from epoch {self.epoch}'
          f'{which}, frozen at its last finite state; the other '
          'replicas finished, and each summary.json records its status; '
          'lower learning_rate (or rho) in a new workdir for the '
          'diverged ones'
      )
    kept = (
        f'the last finite checkpoint (step {self.kept_step}) is kept'
        if self.kept_step is not None
        else 'no checkpoint was saved'
    )
    return (
        f'the training loss became non-finite in epoch {self.epoch}'
        f'{which}; {kept} and summary.json records "status": "diverged"; '
        'lower learning_rate (or rho) in a new workdir'
    )


@functools.partial(jax.jit, static_argnums=1)
def _finite_replicas(tree: PyTree, num_replicas: int) -> jax.Array:
  """Whether each replica's part of a stacked tree is finite: [replicas]
  (a scalar for one)."""
  axes = lambda x: tuple(range(num_replicas > 1, x.ndim))
  return jnp.all(
      jnp.stack(
          [
              jnp.all(jnp.isfinite(x), axis=axes(x))
              for x in jax.tree.leaves(tree)
          ]
      ),
      axis=0,
  )


@jax.jit
def _splice(
    state: run_state.TrainState, source: run_state.TrainState, take: jax.Array
) -> run_state.TrainState:
  """`state` with the replicas where `take` holds replaced by `source`'s
  (parameters, optimizer state and BatchNorm statistics)."""

  def splice(current, replacement):
    where = take.reshape((-1,) + (1,) * (current.ndim - 1))
    return jnp.where(where, replacement, current)

  return state.replace(
      **{
          name: jax.tree.map(
              splice, getattr(state, name), getattr(source, name)
          )
          for name in ('params', 'opt_state', 'batch_stats')
      }
  )


class Guard:
  """Watches the replicas' losses and weights for non-finite values.

  A replica that diverges while others remain is frozen at its last finite
  state (the newest checkpoint's, or its initial state when there is none
  yet; `progress['frozen']` records it with its epoch, so a resumed run
  keeps it frozen) and the others train on; otherwise Diverged is raised.
  """

  def __init__(
      self,
      config: ml_collections.ConfigDict,
      progress: dict[str, Any],
      mesh: jax.sharding.Mesh,
      last_finite: Callable[[], run_state.TrainState],
  ):
    self.num_replicas = config.num_replicas
    self.frozen: dict[str, int] = progress.setdefault('frozen', {})
    self._replicated = jax.NamedSharding(mesh, parallel.REPLICATED)
    self._last_finite = last_finite
    self.active = self._place()

  def _place(self) -> jax.Array:
    """Which replicas train, on the devices (make_train_chunk's `active`)."""
    return jax.device_put(
        np.array([str(r) not in self.frozen for r in range(self.num_replicas)]),
        self._replicated,
    )

  def check(self, values: jax.Array, epoch: int) -> None:
    """Raises Diverged if a training replica's value (a loss) is not
    finite; waits for the values only, not for work dispatched after
    them."""
    values = np.ravel(np.asarray(jax.device_get(values), np.float64))
    bad = [
        r
        for r, v in enumerate(values)
        if not np.isfinite(v) and str(r) not in self.frozen
    ]
    if bad:
      raise Diverged(epoch + 1, bad, self.num_replicas)

  def freeze(
      self, state: run_state.TrainState, diverged: Diverged
  ) -> run_state.TrainState:
    """`state` with the replicas that diverged frozen, or Diverged raised
    when none would be left to train."""
    if len(self.frozen) + len(diverged.replicas) >= self.num_replicas:
      raise diverged
    take = np.isin(np.arange(self.num_replicas), diverged.replicas)
    state = _splice(state, self._last_finite(), take)
    for replica in diverged.replicas:
      self.frozen[str(replica)] = diverged.epoch
    self.active = self._place()
    logging.warning(
        'The training loss of replica %s became non-finite in '
        'epoch %d: frozen at its last finite state, recorded as '
        'diverged; the other replicas train on.',
        ', '.join(map(str, diverged.replicas)),
        diverged.epoch,
    )
    return state

  def checked(
      self, state: run_state.TrainState, values: jax.Array, epoch: int
  ) -> run_state.TrainState:
    """check, and freeze what diverged."""
    try:
      self.check(values, epoch)
    except Diverged as e:
      return self.freeze(state, e)
    return state

  def checked_weights(
      self, state: run_state.TrainState, epoch: int
  ) -> run_state.TrainState:
    """checked on the weights themselves (a loss can be finite at
    non-finite weights, e.g. behind a ReLU)."""
    finite = _finite_replicas(state.params, self.num_replicas)
    return self.checked(state, jnp.where(finite, 0.0, jnp.nan), epoch)
