"""Evaluation of a state on the evaluation sets (test and validation): the
task's loss and per-example metrics summed on device, and, for a task with
a metric of the whole set (ogbg-molpcba's mean average precision), every
example's logits gathered for `tasks.Task.set_metrics`."""

from collections.abc import Callable
from typing import Any

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax

from input_pipeline import feeding
from input_pipeline import sources
from runs import run_log
from runs import run_state
from runtime import parallel
import sparsity
import tasks

PyTree = Any


def device_sums(
    state: run_state.TrainState,
    inputs: dict[str, jax.Array],
    spec: sources.DatasetSpec,
    keep_logits: bool = False,
) -> tuple[dict[str, jax.Array], jax.Array | None]:
  """This device's sums of the task's metrics over its slice of the
  batches in `inputs` (padded examples masked by 'valid'), and, if
  `keep_logits`, every batch's logits; runs inside shard_map."""
  task = spec.task
  params = sparsity.apply_mask(state.params, state.mask)

  def body(totals, batch):
    logits = run_state.inference_logits(state, params, batch['images'], spec)
    sums = tasks.metric_sums(
        task,
        task.losses(logits, batch['labels']),
        logits,
        batch['labels'],
        batch['valid'],
    )
    return (
        jax.tree.map(jnp.add, totals, sums),
        logits if keep_logits else None,
    )

  return lax.scan(body, tasks.zero_sums(task), inputs)


def make_evaluate(
    spec: sources.DatasetSpec, mesh: jax.sharding.Mesh, num_replicas: int = 1
) -> Callable[..., Any]:
  """(state, inputs) -> (summed metrics, weight norm and sparsity,
  predictions).

  `inputs` holds [batches, batch, ...] arrays and a `valid` mask; padded
  examples count for nothing, so each test example counts exactly once.
  Every replica sees the same test set. `predictions` is None unless the
  task needs them; then it holds the 'logits', 'labels' and 'valid' of
  every batch, gathered from all devices and processes.
  """
  task = spec.task
  needs_predictions = tasks.needs_predictions(task)

  def evaluate(state, inputs):
    params = sparsity.apply_mask(state.params, state.mask)
    totals, logits = device_sums(state, inputs, spec, needs_predictions)
    predictions = None
    if needs_predictions:
      gather = lambda x: lax.all_gather(x, parallel.AXIS, axis=1, tiled=True)
      predictions = {
          'logits': gather(logits),
          'labels': gather(inputs['labels']),
          'valid': gather(inputs['valid']),
      }
    return (
        parallel.device_sum(totals),
        {
            'weight_norm': optax.global_norm(params),
            'sparsity': sparsity.kernel_sparsity(params),
        },
        predictions,
    )

  replicated = parallel.REPLICATED
  return parallel.jit_shard(
      parallel.over_replicas(evaluate, num_replicas, (0, None)),
      mesh,
      (replicated, feeding.EVAL_INPUT_SPECS),
      (replicated, replicated, replicated),
  )


def _set_metrics(
    task: tasks.Task,
    predictions: list[dict[str, np.ndarray]],
    replica: int | None,
) -> dict[str, float]:
  """task.set_metrics over the valid examples of every group."""
  logits, labels = [], []
  for group in predictions:
    if replica is not None:  # The replicas' copies are stacked first.
      group = parallel.replica(group, replica)
    valid = group['valid'].reshape(-1)
    logits.append(group['logits'].reshape(valid.size, -1)[valid])
    labels.append(group['labels'].reshape(valid.size, -1)[valid])
  return task.set_metrics(np.concatenate(logits), np.concatenate(labels))


def evaluate_sets(
    evaluate: Callable[..., Any],
    eval_sets: dict[str, feeding.EvalFeeder],
    state: run_state.TrainState,
    task: tasks.Task,
    num_replicas: int,
    check_finite: Callable[[jax.Array], None],
) -> tuple[dict[str, list[dict[str, float]]], list[dict[str, float]]]:
  """Each evaluation set's metrics per replica (the task's: mean loss and
  per-example metrics, then its set metrics), and each replica's weight norm and
  sparsity. `check_finite` sees each set's summed loss plus weight norm
  before anything is read back."""
  evaluated = {}
  for name, eval_data in eval_sets.items():
    set_totals, predictions = None, []
    for inputs in eval_data.groups():
      totals, weights, predicted = evaluate(state, inputs)
      set_totals = (
          totals
          if set_totals is None
          else jax.tree.map(jnp.add, set_totals, totals)
      )
      if predicted is not None:
        predictions.append(jax.device_get(predicted))
    check_finite(set_totals['loss'] + weights['weight_norm'])
    means = [
        run_log.mean_metrics(totals)
        for totals in parallel.per_replica(set_totals, num_replicas)
    ]
    if predictions:
      for replica, replica_means in enumerate(means):
        replica_means.update(
            _set_metrics(
                task, predictions, replica if num_replicas > 1 else None
            )
        )
    evaluated[name] = means
  return evaluated, parallel.per_replica(weights, num_replicas)
