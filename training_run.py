"""A run being trained: what its epochs share (the data, the compiled
steps, the checkpointer, the progress, the writers, the divergence guard),
and how it starts: a run that already ended found, the data read, the
newest checkpoint restored or the state initialized, an extended run
checked, config.json and the hparams written."""

from collections.abc import Callable
import dataclasses
import time
from typing import Any

from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np

from configuration import config_util
from configuration import validate
import divergence
import evaluation
import input_pipeline
from input_pipeline import feeding
from input_pipeline import sources
import models
import optimizers
from runs import outcomes
from runs import run_log
from runs import run_state
from runs import rundir
from runtime import parallel
import step_evals
import train_step


def step_of(state: run_state.TrainState) -> int:
  """The global step (replicas share it)."""
  return int(np.ravel(jax.device_get(state.step))[0])


def finished_before(
    workdir: epath.Path, config: ml_collections.ConfigDict
) -> dict[str, Any] | None:
  """The summary of a run in `workdir` that already ended, None if there is
  none; Diverged again if it diverged."""
  done = run_log.already_done(workdir, config)
  if done is None:
    return None
  if done.get('status', outcomes.FINISHED) == outcomes.DIVERGED:
    diverged = divergence.Diverged(
        done['diverged_epoch'],
        done['diverged_replicas'],
        config.num_replicas,
        done.get('others_finished', False),
    )
    diverged.kept_step = rundir.Checkpointer(
        workdir, config.checkpoints_to_keep, read_only=True
    ).latest_step()
    raise diverged
  logging.info(
      '%s already finished its %d epochs; nothing to do (its '
      'summary.json is left as it is).',
      workdir,
      config.num_epochs,
  )
  return done


@dataclasses.dataclass
class Run:
  """A run being trained: what its epochs share."""

  config: ml_collections.ConfigDict
  workdir: epath.Path
  mesh: jax.sharding.Mesh
  spec: sources.DatasetSpec
  train_data: feeding.TrainFeeder
  eval_sets: dict[str, feeding.EvalFeeder]
  schedule: Callable[[int], Any]
  checkpointer: rundir.Checkpointer
  progress: dict[str, Any]
  num_params: int
  writers: list[run_log.Writer]
  run_writer: run_log.Writer
  guard: divergence.Guard
  evaluate: Callable[..., Any]  # evaluation.make_evaluate's, compiled once.
  start_seconds: float  # This process's clock when it took up the run.
  wall_seconds_before: float  # The run's training time before this process.
  evals: step_evals.StepEvals | None  # With config.log_spaced_evals.
  train_chunks: dict[bool, Callable[..., Any]] = dataclasses.field(
      default_factory=dict
  )  # use_sam -> compiled chunk, built when needed.

  @property
  def num_replicas(self) -> int:
    return self.config.num_replicas

  @property
  def steps_per_epoch(self) -> int:
    return self.train_data.steps_per_epoch

  @classmethod
  def start(
      cls, config: ml_collections.ConfigDict, workdir: epath.Path
  ) -> tuple['Run', run_state.TrainState]:
    """Reads the data, restores the newest checkpoint or initializes, checks
    an extended run, writes config.json and the hparams: (run, state)."""
    start_seconds = time.perf_counter()
    mesh = parallel.create_mesh()
    configs = run_state.replica_configs(config)
    spec = sources.dataset_spec(config)
    train_data, eval_sets = input_pipeline.create_datasets(
        config, mesh, [run_state.seed_keys(c.seed) for c in configs]
    )
    steps_per_epoch = train_data.steps_per_epoch
    if steps_per_epoch < 1:
      raise config_util.ConfigError(
          f'the training split has fewer examples per process than the batch '
          f'({train_data.local_batch_size}); lower batch_size'
      )
    schedule = optimizers.create_learning_rate_schedule(config, steps_per_epoch)
    model = models.create_model(config, spec.num_classes)
    checkpointer = rundir.Checkpointer(workdir, config.checkpoints_to_keep)
    tx = optimizers.create_optimizer(config, schedule)
    state, progress = run_state.initial_state(
        config,
        checkpointer,
        model,
        train_data.example_shape,
        tx,
        train_data,
        mesh,
    )
    step = step_of(state)
    if (workdir / 'config.json').exists():
      validate.check_extension(
          rundir.load_config(workdir),
          config,
          step,
          steps_per_epoch,
          progress['epoch'],
      )
    epoch, position = divmod(step, steps_per_epoch)
    if position:
      logging.info(
          'Resumed from the checkpoint of step %d (epoch %d, step %d '
          'of %d).',
          step,
          epoch + 1,
          position,
          steps_per_epoch,
      )
    elif step:
      logging.info('Resumed from the checkpoint at the end of epoch %d.', epoch)
    evaluated = step_evals.schedule(
        config.num_epochs * steps_per_epoch, config.log_spaced_evals
    )
    step_evals.resume(progress, evaluated)
    # Written only now that training can start, so that a run refused above
    # leaves a workdir that accepts the corrected command.
    run_log.log_start(config)
    if jax.process_index() == 0:
      rundir.write_json(workdir / 'config.json', config.to_dict())
    num_params = run_state.count_params(
        parallel.per_replica(state.params, config.num_replicas)[0]
    )
    logging.info(
        '%s: %s parameters, %d steps per epoch, %d devices, %d ' 'replicas.',
        config.model,
        f'{num_params:,}',
        steps_per_epoch,
        jax.device_count(),
        config.num_replicas,
    )
    writers = [
        run_log.writer(d)
        for d in rundir.replica_dirs(workdir, config.num_replicas)
    ]
    if step == 0:
      for writer, single in zip(writers, configs):
        writer.write_hparams(run_log.hparams(single))

    def last_finite_state():
      """The newest checkpoint's state, or the initial one if none exists."""
      checkpointer.wait()
      restored = checkpointer.restore(state)
      if restored is not None:
        return restored[0]
      return run_state.fresh_state(
          config, model, train_data.example_shape, tx, train_data, mesh
      )

    run = cls(
        config=config,
        workdir=workdir,
        mesh=mesh,
        spec=spec,
        train_data=train_data,
        eval_sets=eval_sets,
        schedule=schedule,
        checkpointer=checkpointer,
        progress=progress,
        num_params=num_params,
        writers=writers,
        run_writer=(
            writers[0] if config.num_replicas == 1 else run_log.writer(workdir)
        ),
        guard=divergence.Guard(config, progress, mesh, last_finite_state),
        evaluate=evaluation.make_evaluate(spec, mesh, config.num_replicas),
        start_seconds=start_seconds,
        wall_seconds_before=progress['wall_seconds'],
        evals=(
            step_evals.StepEvals(
                evaluated,
                spec.task,
                {name: data.inputs for name, data in eval_sets.items()},
            )
            if config.log_spaced_evals
            else None
        ),
    )
    progress.setdefault('step_evals', [[] for _ in configs])
    return run, state

  def _clock(self) -> dict[str, Any]:
    """The progress, with the run's training time over all the processes
    that trained it."""
    self.progress['wall_seconds'] = (
        self.wall_seconds_before + time.perf_counter() - self.start_seconds
    )
    return self.progress

  def save(self, state: run_state.TrainState, **partial_epoch: Any) -> None:
    self.checkpointer.save(state, {**self._clock(), **partial_epoch})

  def chunk(self, use_sam: bool) -> Callable[..., Any]:
    """The compiled dispatch of SGD or SAM steps, built when first needed."""
    if use_sam not in self.train_chunks:
      self.train_chunks[use_sam] = train_step.make_train_chunk(
          self.config,
          self.train_data,
          self.mesh,
          use_sam,
          self.evals,
          self.spec,
      )
    return self.train_chunks[use_sam]

  def close(self) -> None:
    self.checkpointer.close()
    for writer in {id(w): w for w in self.writers + [self.run_writer]}.values():
      writer.close()

  def write_summaries(
      self, statuses: list[str], **details: Any
  ) -> dict[str, Any]:
    return run_log.write_summaries(
        self.workdir,
        self.config,
        self._clock(),
        self.num_params,
        self.train_data.flipped_fractions,
        statuses,
        **details,
    )
