"""Evaluation at log-spaced steps, inside the dispatches: loss curves from
step 0 on, with no host work between steps.

An epoch is the period of records and checkpoints (train.py). A long
full-batch run, such as Andriushchenko & Flammarion's 1e4 to 1e6 steps on a
diagonal network, also wants its training and test loss at steps 1, 2,
3, ..., 1e6 on a log scale, without ending a dispatch at each. With
`config.log_spaced_evals = K`, the training program itself evaluates at the
steps `schedule` returns (step 0 and up to K - 1 steps spaced evenly on a
log scale): a `lax.cond` in the dispatch's loop sums every evaluation
set's metrics there (all sets are held on device) and adds them, with the
training batch's, to the dispatch's metric totals as [K] arrays that are
zero except at the steps evaluated. train.py takes them out of the epoch's
totals and logs a record per step: TensorBoard's `steps/{split}/{metric}`
at that step and summary.json's `step_evals`.

The record of step s is of the parameters after s updates: each evaluation
set's metrics, and the metrics of step s + 1's batch before its update,
under `train` (the whole training set's when the batch is the whole set, as
in full-batch GD: L(w_s)). Metrics of a whole set (ogbg-molpcba's mean
average precision) are left out; the epoch's evaluation has them.
"""

from collections.abc import Callable
from typing import Any

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from runs import run_log
import tasks

PyTree = Any
# The totals' keys of the evaluations: f'{PREFIX}{split}_{metric}'.
PREFIX = 'steps_'


def schedule(total_steps: int, count: int) -> np.ndarray:
  """Step 0 and up to count - 1 steps spaced evenly on a log scale from 1
  to total_steps - 1 (rounded, duplicates merged; one step: 1): the steps
  evaluated, all below total_steps (the epochs' evaluation has the last)."""
  if count < 1 or total_steps < 1:
    return np.zeros(0, np.int64)
  spaced = np.geomspace(1, max(total_steps - 1, 1), count - 1)
  steps = np.unique(np.concatenate([[0], np.round(spaced)]).astype(np.int64))
  return steps[steps < total_steps]


def resume(progress: dict[str, Any], steps: np.ndarray) -> None:
  """Records the evaluated `steps` in the run's progress (saved with each
  checkpoint). A run resumed inside an epoch with other steps (a new
  log_spaced_evals or num_epochs) drops the sums its checkpoint holds for
  the old ones, whose positions would mean other steps; their records of
  that epoch are lost, the others kept."""
  if progress.get('step_evals_steps', []) != steps.tolist():
    partial = progress.get('epoch_totals') or {}
    for key in [k for k in partial if k.startswith(PREFIX)]:
      del partial[key]
  progress['step_evals_steps'] = steps.tolist()


class StepEvals:
  """The evaluations at the steps of `schedule`, for a training program.

  `sums` runs on device inside the dispatch; `split_off` and `records` on
  the host, on an epoch's totals.
  """

  def __init__(
      self,
      steps: np.ndarray,
      task: tasks.Task,
      eval_inputs: dict[str, dict[str, jax.Array]],
  ):
    self.steps = np.asarray(steps, np.int64)
    self.task = task
    # Each evaluation set's [batches, batch, ...] arrays, on device.
    self.eval_inputs = eval_inputs
    self.splits = ('train', *eval_inputs)

  def zero_sums(self) -> dict[str, jax.Array]:
    """The totals' zero entries: every split's metric sums at every step."""
    return {
        f'{PREFIX}{split}_{name}': jnp.zeros(len(self.steps), zero.dtype)
        for split in self.splits
        for name, zero in tasks.zero_sums(self.task).items()
    }

  def sums(
      self,
      state: PyTree,
      step: jax.Array,
      train_sums: dict[str, jax.Array],
      eval_inputs: dict[str, dict[str, jax.Array]],
      set_sums: Callable[[PyTree, dict[str, jax.Array]], dict[str, Any]],
      active: jax.Array,
  ) -> dict[str, jax.Array]:
    """The zero_sums entries of a step that starts at `step` from `state`:
    at `step`'s position if it is evaluated, else zero. Runs inside
    shard_map: these are this device's sums.

    `train_sums` are the step's metric sums (one per replica if stacked);
    `set_sums(state, inputs)` sums an evaluation set's metrics (one per
    replica); `active` zeroes the replicas not trained.
    """
    steps = jnp.asarray(self.steps, jnp.int32)
    position = jnp.searchsorted(steps, step)
    due = steps[jnp.minimum(position, len(self.steps) - 1)] == step
    at = jnp.arange(len(self.steps)) == position

    def evaluate(state):
      return {name: set_sums(state, x) for name, x in eval_inputs.items()}

    shapes = jax.eval_shape(evaluate, state)
    evaluated = lax.cond(
        due,
        evaluate,
        lambda _: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes),
        state,
    )
    placed = lambda x: jnp.where(
        at & due & jnp.expand_dims(active, -1), jnp.expand_dims(x, -1), 0
    ).astype(x.dtype)
    result = {}
    for split, sums in (('train', train_sums), *evaluated.items()):
      for name in tasks.zero_sums(self.task):
        result[f'{PREFIX}{split}_{name}'] = placed(sums[name])
    return result

  @staticmethod
  def split_off(
      totals: dict[str, Any],
  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the epoch's own totals, the evaluations' sums)."""
    own = {k: v for k, v in totals.items() if not k.startswith(PREFIX)}
    return own, {k: v for k, v in totals.items() if k.startswith(PREFIX)}

  def records(
      self, sums: dict[str, Any], first: int, end: int
  ) -> list[dict[str, Any]]:
    """One replica's records of the evaluated steps in [first, end): each
    split's mean metrics (`{split}_{metric}`) at its `step`."""
    sums = jax.device_get(sums)
    records = []
    for position, step in enumerate(self.steps):
      if not first <= step < end:
        continue
      record = {'step': int(step)}
      for split in self.splits:
        split_sums = {
            name: np.asarray(sums[f'{PREFIX}{split}_{name}'])[position]
            for name in tasks.zero_sums(self.task)
        }
        if split_sums['count'] > 0:
          record.update(
              (f'{split}_{k}', v)
              for k, v in run_log.mean_metrics(split_sums).items()
          )
      if len(record) > 1:  # Frozen replicas have zero counts.
        records.append(record)
    return records


def write(writer: run_log.Writer, record: dict[str, Any]) -> None:
  """Logs a step's record as TensorBoard's steps/{split}/{metric}."""
  writer.write_scalars(
      record['step'],
      {
          f'steps/{run_log.tensorboard_name(k)}': v
          for k, v in record.items()
          if k != 'step'
      },
  )
