"""What a run writes for people and for report.py: TensorBoard scalars and
hparams, the console line of each epoch, and summary.json.

A run of several replicas writes each replica's TensorBoard events and
summary.json under workdir/replica_<r>/ (rundir.replica_dirs) and an index
summary.json at the top.
"""

import time
from typing import Any, Protocol

from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np
import tensorboardX

from configs import default
from input_pipeline import sources
import models
from runs import outcomes
from runs import run_state
from runs import rundir
from runtime import xla_cpu
import sam
import tasks


def log_start(config: ml_collections.ConfigDict) -> None:
  """Logs where a run that was accepted runs and its resolved config; a run
  refused by its config or workdir shows only its one-line error."""
  logging.info(
      'Compilation cache: %s',
      jax.config.jax_compilation_cache_dir
      if jax.config.jax_enable_compilation_cache
      else 'off',
  )
  logging.info(
      'JAX process %d of %d; local devices: %s; all devices: %d',
      jax.process_index(),
      jax.process_count(),
      jax.local_devices(),
      jax.device_count(),
  )
  if jax.local_devices()[0].platform == 'cpu':
    logging.info('XLA:CPU threads: %d', xla_cpu.pool_size())
    if not xla_cpu.threads_applied(config.cpu_threads):
      logging.warning(
          'cpu_threads=%d not applied: XLA:CPU sizes its thread pool when'
          ' JAX starts, which was before this run (main.py applies it'
          ' first; or set PJRT_NPROC=%d in the environment)',
          config.cpu_threads,
          config.cpu_threads,
      )
  logging.info('Config:\n%s', config)


def mean_metrics(totals: dict[str, Any]) -> dict[str, float]:
  """Each summed metric's mean over the examples (tasks.metric_sums).

  With label noise, also each per-example metric on the examples whose label
  was kept (`{metric}_clean`) and on the flipped ones (`{metric}_flipped`:
  for accuracy, the rate of predicting the flipped label, i.e. how much of
  the noise the network memorizes).
  """
  totals = jax.device_get(totals)
  count = max(int(totals['count']), 1)
  flipped = int(totals.get('count_flipped', 0))
  means = {}
  for name, total in totals.items():
    if name == 'count' or name.endswith('_flipped'):
      continue
    means[name] = float(total) / count
    if flipped and f'{name}_flipped' in totals:
      on_flipped = float(totals[f'{name}_flipped'])
      means[f'{name}_clean'] = (float(total) - on_flipped) / max(
          count - flipped, 1
      )
      means[f'{name}_flipped'] = on_flipped / flipped
  return means


# The evaluated splits: a record's `{split}_{metric}` entry (whatever
# metric the task has) is TensorBoard's `{split}/{metric}`; other entries
# keep their names.
SPLITS = ('train', 'test', 'validation')


def tensorboard_name(key: str) -> str:
  """The TensorBoard tag of an epoch record's entry."""
  split, _, metric = key.partition('_')
  return f'{split}/{metric}' if split in SPLITS and metric else key


class Writer(Protocol):
  """Where a run's TensorBoard scalars and hparams go."""

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    ...

  def write_hparams(self, hparams: dict[str, Any]) -> None:
    ...

  def close(self) -> None:
    ...


class TensorBoardWriter:
  """TensorBoard event files written by tensorboardX, which needs no
  TensorFlow: clu's writers import TensorFlow (about 2 s), which a training
  process that reads no TFDS data never needs. Scalars are written as
  scalar summaries (`simple_value`), so TensorBoard's EventAccumulator and
  other readers see them with `Scalars(tag)`; events are written by a
  background thread."""

  def __init__(self, logdir: epath.Path):
    self._writer = tensorboardX.SummaryWriter(str(logdir))

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    for tag, value in scalars.items():
      self._writer.add_scalar(tag, float(value), step)

  def write_hparams(self, hparams: dict[str, Any]) -> None:
    """The run's hparams as TensorBoard's HParams view reads them (its
    session start; the view finds the metrics among the scalars)."""
    _, session_start, _ = tensorboardX.summary.hparams(hparams, {})
    self._writer.file_writer.add_summary(session_start)

  def close(self) -> None:
    self._writer.close()


class _NoWriter:
  """The writer of processes other than the first: writes nothing."""

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    del step, scalars

  def write_hparams(self, hparams: dict[str, Any]) -> None:
    del hparams

  def close(self) -> None:
    pass


def writer(logdir: epath.Path) -> Writer:
  """TensorBoard on the first process; nothing on the others."""
  if jax.process_index() > 0:
    return _NoWriter()
  return TensorBoardWriter(logdir)


class ProgressScalars:
  """`steps_per_sec` (training steps over the wall time since the previous
  call, evaluation included) and `uptime` (seconds since this process
  started training), written to `writer` at the end of each epoch."""

  def __init__(self, writer: Writer, step: int):
    self._writer = writer
    self._start = time.monotonic()
    self._last = (step, self._start)

  def __call__(self, step: int) -> None:
    now = time.monotonic()
    last_step, last_time = self._last
    self._writer.write_scalars(
        step,
        {
            'steps_per_sec': (step - last_step) / max(now - last_time, 1e-9),
            'uptime': now - self._start,
        },
    )
    self._last = (step, now)


def write_epoch(writer: Writer, record: dict[str, Any]) -> None:
  """Logs an epoch's record (a history entry) as TensorBoard scalars."""
  writer.write_scalars(
      record['step'],
      {
          tensorboard_name(k): v
          for k, v in record.items()
          if k not in ('epoch', 'step', 'sam') and v is not None
      },
  )


def unread_keys(config: ml_collections.ConfigDict) -> set[str]:
  """The config keys a run does not read: other model families' keys, keys
  of another kind of inputs or of another dataset, SAM's keys for SGD and
  other SAM variants' keys."""
  unread = set()
  for family in models.MODELS.values():
    unread.update(family.keys)
  unread.difference_update(models.get(config.model).keys)
  spec = sources.dataset_spec(config)
  for kind, keys in sources.INPUT_KEYS.items():
    if kind != spec.inputs:
      unread.update(keys)
  unread.update(sources.dataset_keys() - set(spec.keys))
  if config.optimizer != 'sam':
    unread.update(k for k in config.keys() if default.is_sam_only(k))
  else:
    for variant in sam.VARIANTS.values():
      unread.update(variant.keys)
    unread.difference_update(sam.get(config.sam_variant).keys)
  return unread


def hparams(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """TensorBoard hparams: the keys the run reads, scalars as they are and
  tuples as strings (so that the HParams view can group runs by
  num_neurons, the sweep axis)."""
  unread = unread_keys(config)
  return {
      k: str(tuple(v)) if isinstance(v, (tuple, list)) else v
      for k, v in config.to_dict().items()
      if k not in unread and isinstance(v, (int, float, str, bool, tuple, list))
  }


def already_done(
    workdir: epath.Path, config: ml_collections.ConfigDict
) -> dict[str, Any] | None:
  """The summary of a run in `workdir` that already ended (finished or
  diverged) with this config's num_epochs, else None."""
  summary = rundir.read_json(workdir / 'summary.json')
  if (
      not isinstance(summary, dict)
      or summary.get('config', {}).get('num_epochs') != config.num_epochs
  ):
    return None
  return summary


def write_summaries(
    workdir: epath.Path,
    config: ml_collections.ConfigDict,
    progress: dict[str, Any],
    num_params: int,
    flipped_fractions: list[float],
    statuses: list[str],
    replica_details: list[dict[str, Any]] | None = None,
    index_details: dict[str, Any] | None = None,
    **details: Any,
) -> dict[str, Any]:
  """Writes each replica's summary.json (and, with replicas, the index in
  workdir/summary.json), adding `details` to each, `replica_details[r]` to
  replica r's and `index_details` to the workdir's; returns the workdir's
  summary as its file holds it."""
  configs = run_state.replica_configs(config)
  num_replicas = len(configs)
  replica_details = replica_details or [{}] * num_replicas
  summaries = [
      {
          **make_summary(
              single,
              history,
              progress,
              evaluated,
              num_params,
              fraction,
              num_replicas,
              status,
          ),
          **details,
          **extra,
      }
      for single, history, evaluated, fraction, status, extra in zip(
          configs,
          progress['histories'],
          progress.get('step_evals', [[]] * num_replicas),
          flipped_fractions,
          statuses,
          replica_details,
      )
  ]
  return write_replica_summaries(
      workdir,
      config,
      summaries,
      statuses,
      progress,
      details={
          **details,
          'train_examples_per_sec': _steady_throughput(progress),
      },
      index_details=index_details,
  )


def write_replica_summaries(
    workdir: epath.Path,
    config: ml_collections.ConfigDict,
    summaries: list[dict[str, Any]],
    statuses: list[str],
    progress: dict[str, Any],
    details: dict[str, Any] | None = None,
    index_details: dict[str, Any] | None = None,
) -> dict[str, Any]:
  """Writes each replica's summary in its directory and, with replicas,
  workdir/summary.json indexing them (with `details` and `index_details`;
  the latter also in a single run's summary); returns the workdir's summary
  as its file holds it."""
  dirs = rundir.replica_dirs(workdir, len(summaries))
  if len(summaries) == 1:
    summary = {**summaries[0], **(index_details or {})}
  else:
    summary = {
        'config': config.to_dict(),
        'status': (
            outcomes.FINISHED
            if set(statuses) == {outcomes.FINISHED}
            else outcomes.DIVERGED
        ),
        'num_replicas': len(summaries),
        'epochs': progress['epoch'],
        'wall_seconds': progress['wall_seconds'],
        'replica_summaries': [
            str(d.relative_to(workdir) / 'summary.json') for d in dirs
        ],
        **(details or {}),
        **(index_details or {}),
    }
  if jax.process_index() == 0:
    for directory, single_summary in zip(dirs, summaries):
      directory.mkdir(parents=True, exist_ok=True)
      rundir.write_json(directory / 'summary.json', single_summary)
    rundir.write_json(workdir / 'summary.json', summary)
  return rundir.as_json(summary)


def _format(metric: tasks.Metric, value: float) -> str:
  return f'{100 * value:.2f}%' if metric.percent else f'{value:.4g}'


def log_epoch(
    progress: dict[str, Any],
    num_epochs: int,
    seconds: float,
    task: tasks.Task,
) -> None:
  """One short line per epoch: each split's metrics (means over replicas,
  if several)."""
  # Replicas frozen after diverging have no record of this epoch.
  last = [
      history[-1]
      for history in progress['histories']
      if history and history[-1]['epoch'] == progress['epoch']
  ]
  mean = lambda key: float(np.mean([r[key] for r in last]))
  replicas = f' (mean of {len(last)} replicas)' if len(last) > 1 else ''
  splits = [
      f'{split} '
      + ' '.join(
          f'{m.name} {_format(m, mean(f"{split}_{m.name}"))}'
          for m in task.metrics
          if f'{split}_{m.name}' in last[0]
      )
      for split in SPLITS
      if f'{split}_loss' in last[0]
  ]
  logging.info(
      'epoch %d/%d  %s  lr %.3g  %.2fs%s',
      progress['epoch'],
      num_epochs,
      '  '.join(splits),
      last[0]['learning_rate'],
      seconds,
      replicas,
  )


def _steady_throughput(progress: dict[str, Any]) -> float | None:
  """Training examples per second after compilation, evaluation excluded."""
  seconds = progress['steady_seconds']
  return progress['steady_examples'] / seconds if seconds > 0 else None


def make_summary(
    config: ml_collections.ConfigDict,
    history: list[dict[str, Any]],
    progress: dict[str, Any],
    step_evals: list[dict[str, Any]],
    num_params: int,
    flipped_fraction: float,
    num_replicas: int = 1,
    status: str = outcomes.FINISHED,
) -> dict[str, Any]:
  """One run's (or replica's) results, as written to summary.json.

  `status` is outcomes.FINISHED, or DIVERGED / INCOMPLETE for a run that
  stopped early: its final_* entries are then those of the last finite
  epoch (None if there was none).
  """
  final = history[-1] if history else {}
  task = sources.dataset_spec(config).task
  best = max(history, key=tasks.ranking(task, 'test')) if history else {}
  # The epoch one would pick without looking at the test set.
  best_validation = (
      max(history, key=tasks.ranking(task, 'validation'))
      if history and f'validation_{task.primary_metric}' in final
      else {}
  )
  throughput = _steady_throughput(progress)
  # Each metric of the task, at the last epoch and at the best (ranked by
  # the primary metric on the test and on the validation split; the
  # validation entries are None without validation_fraction).
  metrics = {}
  for split, best_record in (('test', best), ('validation', best_validation)):
    for m in task.metrics:
      metrics[f'final_{split}_{m.name}'] = final.get(f'{split}_{m.name}')
      metrics[f'best_{split}_{m.name}'] = best_record.get(f'{split}_{m.name}')
  # The training sums (no set metrics); with label noise, also on the
  # kept labels and on the flipped ones.
  for m in (tasks.LOSS, *tasks.per_example_metrics(task)):
    metrics[f'final_train_{m.name}'] = final.get(f'train_{m.name}')
  for m in tasks.per_example_metrics(task):
    for part in ('clean', 'flipped'):
      metrics[f'final_train_{m.name}_{part}'] = final.get(
          f'train_{m.name}_{part}'
      )
  return {
      'config': config.to_dict(),
      'status': status,
      'num_params': num_params,
      'sparsity': final.get('sparsity'),
      **tasks.declaration(task),
      **metrics,
      'best_epoch': best.get('epoch'),
      'best_validation_epoch': best_validation.get('epoch'),
      # With label noise: the fraction of training labels flipped.
      'label_noise_flipped_fraction': flipped_fraction,
      'epochs': final.get('epoch', 0),
      'steps': final.get('step', 0),
      'num_devices': jax.device_count(),
      'wall_seconds': progress['wall_seconds'],
      # Training examples per second after compilation, evaluation excluded;
      # replicas trained side by side share it.
      'train_examples_per_sec': (
          throughput / num_replicas if throughput else None
      ),
      'history': history,
      # With log_spaced_evals: the records of the evaluated steps.
      **({'step_evals': step_evals} if step_evals else {}),
  }
