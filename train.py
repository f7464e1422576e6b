"""Training: the loop that trains a run and records it, epoch by epoch.

It restores or initializes the run (training_run.py), trains each epoch in
dispatches of the compiled step (train_step.py) while watching for a stop
request and for divergence (divergence.py), evaluates (evaluation.py), runs
the evaluators it is given (e.g. the Hessian every few epochs), records the
epoch (runs/run_log.py: TensorBoard, the console, the history) and saves a
checkpoint; at the end it writes the summaries. Nothing imports this module
but the programs.
"""

from collections.abc import Callable, Sequence
import dataclasses
import functools
import time
from typing import Any, Protocol

from absl import logging
from etils import epath
import jax
import ml_collections

from configuration import config_util
from configuration import validate
from divergence import Diverged
import evaluation
from runs import outcomes
from runs import run_log
from runs import run_state
from runs import rundir
from runtime import parallel
from runtime import xla_cpu
import step_evals
import train_step
import training_run

PyTree = Any
# The config keys the loop reads (the others belong to the data, the model,
# the optimizer, SAM, sparsity and the analysis).
CONFIG_KEYS = (
    'optimizer',
    'num_epochs',
    'batch_size',
    'eval_batch_size',
    'seed',
    'num_replicas',
    'replica_rho',
    'replica_seeds',
    'steps_per_dispatch',
    'checkpoint_every_steps',
    'checkpoints_to_keep',
    'init_from',
    'compilation_cache_dir',
    'cpu_threads',
    'sam_start_epoch',
    'log_spaced_evals',
)


class EpochEvaluator(Protocol):
  """A measurement the loop runs on the state every `every_epochs` epochs
  (e.g. analysis.training.TrainingAnalysis), built from the config before
  training starts; its scalars join the epoch's record and TensorBoard."""

  every_epochs: int

  def run(self, state: run_state.TrainState) -> list[dict[str, float]]:
    """One dict of scalars per replica of the (stacked) state."""


# Raised when should_stop() asked to stop (main.py catches it).
Stopped = outcomes.Stopped


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    should_stop: Callable[[], bool] = lambda: False,
    evaluators: Sequence[EpochEvaluator] = (),
) -> dict[str, Any]:
  """Trains and evaluates; resumes from `workdir`; returns the summary.

  With config.num_replicas > 1, trains the replicas side by side in one
  program; each gets its own TensorBoard directory and summary.json under
  workdir/replica_<r>/, and the returned (and workdir's) summary indexes
  them.

  Args:
    config: the run's config.
    workdir: an absolute path (entry points resolve the user's).
    should_stop: polled after each dispatch; when it returns True, the
      current step is checkpointed and Stopped is raised.
    evaluators: measurements logged every few epochs; with
      config.analysis_every_epochs, main.py passes
      analysis.training.training_evaluators(config).

  Raises:
    config_util.ConfigError: the config or workdir cannot be trained; nothing
      was written but the workdir's lock file.
    Diverged: the loss became non-finite (summary.json says so).
    Stopped: should_stop() asked to stop; resuming continues exactly.
  """
  workdir = rundir.require_absolute(workdir, 'workdir')
  validate.check_config(config)
  config_util.require(
      not config.analysis_every_epochs or evaluators,
      'analysis_every_epochs is set but no evaluator was given: pass '
      'analysis.training.training_evaluators(config) (main.py does)',
  )
  if config.init_from:
    rundir.require_absolute(config.init_from, 'init_from')
  rundir.check_workdir(workdir, config)
  with rundir.locked(workdir):
    return _train(config, workdir, should_stop, evaluators)


@dataclasses.dataclass
class _EpochTraining:
  """What training an epoch measured: the summed metrics per replica, the
  steady-state steps and seconds (after compilation), and the sums of the
  evaluations at its log-spaced steps per replica (step_evals.py)."""

  totals: list[dict[str, Any]]
  steady_steps: int
  steady_seconds: float
  step_sums: list[dict[str, Any]]


def _train_epoch(
    run: training_run.Run,
    state: run_state.TrainState,
    epoch: int,
    use_sam: bool,
    should_stop: Callable[[], bool],
) -> tuple[run_state.TrainState, _EpochTraining]:
  """Trains `epoch` from where the state is, dispatch by dispatch; saves a
  checkpoint every config.checkpoint_every_steps steps, and on a stop
  request (then raises Stopped)."""
  config, steps_per_epoch = run.config, run.steps_per_epoch
  # Throughput counts the steps after the first dispatch of each training
  # program in this process, which includes its compilation.
  compiling = use_sam not in run.train_chunks
  chunk = run.chunk(use_sam)
  position = training_run.step_of(state) - epoch * steps_per_epoch
  # Resumed inside the epoch: the sums of the steps before `position`.
  partial = run.progress.pop('epoch_totals', None)
  chunk_totals = (
      [train_step.device_totals(partial, run.spec.task, run.evals)]
      if partial
      else []
  )
  steady_start, steady_steps = time.perf_counter(), steps_per_epoch - position
  previous = None
  for inputs, num_steps in run.train_data.epoch_chunks(
      epoch,
      xla_cpu.steps_per_dispatch(config),
      position,
      config.checkpoint_every_steps,
  ):
    state, totals = chunk(state, inputs, num_steps, run.guard.active)
    position += num_steps
    chunk_totals.append(totals)
    # Waiting for the previous dispatch while this one runs keeps the
    # device busy and acts on a divergence or a stop within a dispatch,
    # without a host sync per step.
    if previous is not None:
      state = run.guard.checked(state, previous, epoch)
    previous = totals['loss']
    if compiling:
      jax.block_until_ready(totals)
      compiling = False
      # benchmarks/startup.py times a process up to this line.
      logging.info(
          'First dispatch of the %s program done (%d steps).',
          'SAM' if use_sam else 'SGD',
          num_steps,
      )
      steady_start = time.perf_counter()
      steady_steps -= num_steps
    every = config.checkpoint_every_steps
    # Every process takes the same decision (saving is collective).
    stopping = position < steps_per_epoch and parallel.any_process(
        should_stop()
    )
    if stopping or (
        position < steps_per_epoch and every and position % every == 0
    ):
      state = run.guard.checked(state, totals['loss'], epoch)
      state = run.guard.checked_weights(state, epoch)
      run.save(
          state,
          epoch_totals=train_step.host_totals(
              jax.tree.map(lambda *x: sum(x), *chunk_totals)
          ),
      )
      if stopping:
        raise Stopped(
            f'stopped at step {training_run.step_of(state)} (epoch '
            f'{epoch + 1}, step {position} of {steps_per_epoch}) '
            'with a checkpoint; run the same command to resume'
        )
  totals, step_sums = step_evals.StepEvals.split_off(
      jax.tree.map(lambda *x: sum(x), *chunk_totals)
  )
  state = run.guard.checked(state, totals['loss'], epoch)
  return state, _EpochTraining(
      parallel.per_replica(totals, run.num_replicas),
      steady_steps,
      time.perf_counter() - steady_start,
      parallel.per_replica(step_sums, run.num_replicas),
  )


def _evaluate(
    run: training_run.Run,
    state: run_state.TrainState,
    epoch: int,
    evaluators: Sequence[EpochEvaluator],
) -> tuple[
    run_state.TrainState,
    dict[str, Any],
    list[dict[str, float]],
    list[dict[str, float]],
]:
  """The evaluation sets' metrics, the weights' norm and sparsity, and the
  evaluators' scalars due this epoch, per replica; a replica whose
  evaluation loss is not finite is frozen first (the state returned)."""
  while True:  # Again if a replica is frozen on its evaluation loss.
    try:
      evaluated, weights = evaluation.evaluate_sets(
          run.evaluate,
          run.eval_sets,
          state,
          run.spec.task,
          run.num_replicas,
          functools.partial(run.guard.check, epoch=epoch),
      )
      break
    except Diverged as e:
      state = run.guard.freeze(state, e)
  measured = [{} for _ in range(run.num_replicas)]
  for evaluator in evaluators:
    if (epoch + 1) % evaluator.every_epochs == 0:
      for scalars, new in zip(measured, evaluator.run(state)):
        scalars.update(new)
  return state, evaluated, weights, measured


def _record_epoch(
    run: training_run.Run,
    epoch: int,
    use_sam: bool,
    trained: _EpochTraining,
    evaluated: dict[str, Any],
    weights: list[dict[str, float]],
    measured: list[dict[str, float]],
) -> None:
  """Appends the epoch (and its evaluations at log-spaced steps) to each
  training replica's history and TensorBoard."""
  step = (epoch + 1) * run.steps_per_epoch
  for replica, history in enumerate(run.progress['histories']):
    if str(replica) in run.guard.frozen:
      continue  # Its history ends with its last finite epoch.
    if run.evals is not None:
      for record in run.evals.records(
          trained.step_sums[replica], step - run.steps_per_epoch, step
      ):
        run.progress['step_evals'][replica].append(record)
        step_evals.write(run.writers[replica], record)
    record = {
        'epoch': epoch + 1,
        'step': step,
        'sam': use_sam,
        **{
            f'train_{k}': v
            for k, v in run_log.mean_metrics(trained.totals[replica]).items()
        },
        **{
            f'{name}_{k}': v
            for name, means in evaluated.items()
            for k, v in means[replica].items()
        },
        'learning_rate': float(run.schedule(step - 1)),
        'weight_norm': float(weights[replica]['weight_norm']),
        'sparsity': float(weights[replica]['sparsity']),
        # Each replica's share of the training throughput.
        'examples_per_sec': (
            trained.steady_steps
            * run.config.batch_size
            / trained.steady_seconds
            if trained.steady_steps
            else None
        ),
        **measured[replica],
    }
    history.append(record)
    run_log.write_epoch(run.writers[replica], record)


def _train(
    config: ml_collections.ConfigDict,
    workdir: epath.Path,
    should_stop: Callable[[], bool],
    evaluators: Sequence[EpochEvaluator],
) -> dict[str, Any]:
  """train_and_evaluate, once the config is checked and the workdir
  locked."""
  done = training_run.finished_before(workdir, config)
  if done is not None:
    return done
  run, state = training_run.Run.start(config, workdir)
  progress = run.progress
  report_progress = run_log.ProgressScalars(
      run.run_writer, training_run.step_of(state)
  )
  try:
    for epoch in range(progress['epoch'], config.num_epochs):
      epoch_start = time.perf_counter()
      use_sam = config.optimizer == 'sam' and epoch >= config.sam_start_epoch
      state, trained = _train_epoch(run, state, epoch, use_sam, should_stop)
      progress['steady_examples'] += (
          trained.steady_steps * config.batch_size * run.num_replicas
      )
      progress['steady_seconds'] += trained.steady_seconds
      state, evaluated, weights, measured = _evaluate(
          run, state, epoch, evaluators
      )
      _record_epoch(run, epoch, use_sam, trained, evaluated, weights, measured)
      progress['epoch'] = epoch + 1
      report_progress((epoch + 1) * run.steps_per_epoch)
      run_log.log_epoch(
          progress,
          config.num_epochs,
          time.perf_counter() - epoch_start,
          run.spec.task,
      )
      run.save(state)
      if epoch + 1 < config.num_epochs and parallel.any_process(should_stop()):
        raise Stopped(
            f'stopped at step {training_run.step_of(state)} (the end of epoch '
            f'{epoch + 1}) with a checkpoint; run the same command '
            'to resume'
        )
  except Diverged as e:
    e.kept_step = run.checkpointer.latest_step()
    run.write_summaries(
        [
            outcomes.DIVERGED
            if r in e.replicas or str(r) in run.guard.frozen
            else outcomes.INCOMPLETE
            for r in range(run.num_replicas)
        ],
        diverged_epoch=e.epoch,
        diverged_replicas=e.replicas,
    )
    raise
  finally:
    run.close()
  return _finish(run)


def _finish(run: training_run.Run) -> dict[str, Any]:
  """Writes the summaries of a run whose epochs are done; returns the
  workdir's, or raises Diverged if some replicas were frozen (the others
  finished)."""
  frozen = sorted(int(r) for r in run.guard.frozen)
  if not frozen:
    return run.write_summaries([outcomes.FINISHED] * run.num_replicas)
  diverged = Diverged(
      min(run.guard.frozen.values()),
      frozen,
      run.num_replicas,
      others_finished=True,
  )
  run.write_summaries(
      [
          outcomes.DIVERGED if r in frozen else outcomes.FINISHED
          for r in range(run.num_replicas)
      ],
      replica_details=[
          {'diverged_epoch': run.guard.frozen[str(r)]} if r in frozen else {}
          for r in range(run.num_replicas)
      ],
      index_details={
          'diverged_epoch': diverged.epoch,
          'diverged_replicas': frozen,
          'others_finished': True,
      },
  )
  raise diverged
