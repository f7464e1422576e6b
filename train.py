"""Training: SGD or SAM, data-parallel over devices (evaluation.py evaluates).

Data parallelism is written pmap-style, as per-device code with explicit
collectives, using `jax.shard_map` (which `jax.pmap` itself is built on since
JAX 0.8, and which JAX recommends for new code). The state is replicated;
each device computes gradients on its slice of the global batch (for SAM,
the ascent too) and `lax.pmean` averages them. One call from Python runs up to
`config.steps_per_dispatch` steps inside a `lax.fori_loop`, drawing batches
on device (see on_device.OnDeviceTrainData), so neither host-to-device
copies nor the Python loop sit between steps. Metrics are summed on device
and read once per epoch.
"""

import functools
import time
from typing import Any, Callable, Protocol, Sequence

from absl import logging
from etils import epath
import jax
from jax import lax
import jax.numpy as jnp
import ml_collections
import numpy as np

import evaluation
import input_pipeline
from input_pipeline import feeding
from input_pipeline import sources
import models
import optimizers
import outcomes
import parallel
import rundir
import run_log
import run_state
import sam
import tasks
import validate
import xla_cpu

PyTree = Any


class EpochEvaluator(Protocol):
  """A measurement the loop runs on the state every `every_epochs` epochs
  (e.g. analysis.measure.TrainingAnalysis), built from the config before
  training starts; its scalars join the epoch's record and TensorBoard."""

  every_epochs: int

  def run(self, state: run_state.TrainState) -> list[dict[str, float]]:
    """One dict of scalars per replica of the (stacked) state."""


def sam_step_gradient(state: run_state.TrainState, images: jax.Array,
                      labels: jax.Array, config: ml_collections.ConfigDict,
                      rho: float | jax.Array, learning_rate: jax.Array
                      ) -> tuple[PyTree, tuple[Any, ...]]:
  """The SAM variant's gradient on this device's batch (config.sam_variant,
  see the sam package), and (losses, logits, BN stats).

  With config.sam_m = 0 the ascent sees the whole device batch. Otherwise the
  batch is split into micro-batches of sam_m examples, each takes its own
  ascent (vectorized with vmap) and their descent gradients are averaged:
  m-sharpness. Micro-batches are contiguous slices of the global batch, so
  the result does not depend on the number of devices.
  """
  variant = sam.get(config.sam_variant)

  def gradient(images, labels):
    grads, clean, perturbed = variant.gradient(sam.Oracle(
        grad_fn=functools.partial(run_state.loss_gradient, state, images,
                                  labels),
        params=state.params, rho=rho, config=config, step=state.step,
        learning_rate=learning_rate))
    (losses, logits, clean_stats), (_, _, perturbed_stats) = clean, perturbed
    stats = (perturbed_stats if config.sam_batchnorm_stats == 'perturbed' else
             clean_stats)
    return grads, (losses, logits, stats)

  if not config.sam_m:
    return gradient(images, labels)
  micro = lambda x: x.reshape((-1, config.sam_m) + x.shape[1:])
  grads, (losses, logits, stats) = jax.vmap(gradient)(micro(images),
                                                      micro(labels))
  mean = lambda tree: jax.tree.map(lambda x: x.mean(0), tree)
  return mean(grads), (losses.reshape(-1), logits.reshape(
      (-1,) + logits.shape[2:]), mean(stats))


def train_step(state: run_state.TrainState, batch: dict[str, jax.Array], *,
               config: ml_collections.ConfigDict, use_sam: bool,
               rho: float | jax.Array,
               schedule: Callable[[jax.Array], jax.Array]
               ) -> tuple[run_state.TrainState, dict[str, jax.Array]]:
  """One SGD or SAM step on this device's batch; runs inside shard_map."""
  images, labels = batch['images'], batch['labels']
  if use_sam:
    grads, (losses, logits, batch_stats) = sam_step_gradient(
        state, images, labels, config, rho, schedule(state.step))
  else:
    grads, (losses, logits, batch_stats) = run_state.loss_gradient(
        state, images, labels, state.params)
  grads = parallel.device_mean(grads)
  # Each device normalized with its own batch; averaging the running
  # statistics keeps the devices' copies identical.
  batch_stats = parallel.device_mean(batch_stats)
  state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  # Metrics come from the unperturbed pass.
  correct = state.task.correct(logits, labels)
  flipped = batch.get('flipped', jnp.zeros(labels.shape[0], bool))
  metrics = tasks.metric_sums(state.task, losses, logits, labels,
                              jnp.ones(labels.shape[0], bool))
  metrics.update(correct_flipped=jnp.sum(jnp.where(flipped, correct, 0)),
                 count_flipped=jnp.sum(flipped.astype(jnp.int32)))
  return state, metrics


def _zero_metrics() -> dict[str, jax.Array]:
  """Zero sums of the training metrics (evaluation's plus flipped labels)."""
  return dict(evaluation.zero_sums(), correct_flipped=jnp.float32(0),
              count_flipped=jnp.int32(0))


def all_replicas(config: ml_collections.ConfigDict) -> np.ndarray:
  """The `active` argument of make_train_chunk's function that trains every
  replica."""
  return np.ones(config.num_replicas, bool)


def _frozen_unless(active: jax.Array, new: run_state.TrainState,
                   old: run_state.TrainState,
                   metrics: dict[str, jax.Array]
                   ) -> tuple[run_state.TrainState, dict[str, jax.Array]]:
  """One replica's step, or, unless `active`, its state unchanged (bar the
  step counter, which replicas share) and zero metrics."""
  keep = lambda new, old: jnp.where(active, new, old)
  state = new.replace(params=jax.tree.map(keep, new.params, old.params),
                      opt_state=jax.tree.map(keep, new.opt_state,
                                             old.opt_state),
                      batch_stats=jax.tree.map(keep, new.batch_stats,
                                               old.batch_stats))
  return state, jax.tree.map(lambda m: jnp.where(active, m, 0), metrics)


def make_train_chunk(config: ml_collections.ConfigDict,
                     data: feeding.TrainFeeder, mesh: jax.sharding.Mesh,
                     use_sam: bool) -> Callable[..., Any]:
  """(state, inputs, num_steps, active) -> (state, summed metrics), on all
  devices.

  `data.device_batch(inputs, index, step)` returns this device's batch for
  the `index`-th step of the dispatch (global step `step`). `num_steps` is a
  traced value, so a shorter last dispatch of an epoch does not recompile.
  With xla_cpu.steps_per_dispatch(config) == 1 a dispatch is one step, no
  loop. With several replicas the state is stacked and every step is
  vmapped over it; `active` (one bool per replica, all_replicas(config) to
  train all) leaves a replica whose loss diverged as it is.
  """
  num_replicas = config.num_replicas
  rhos = jnp.asarray([c.rho for c in run_state.replica_configs(config)],
                     jnp.float32)
  # The base optimizer's learning rate, for the variants that read it.
  schedule = optimizers.create_learning_rate_schedule(config,
                                                      data.steps_per_epoch)

  def replica_step(index, state, inputs, rho, active):
    batch = data.device_batch(inputs, index, state.step)
    new, metrics = train_step(state, batch, config=config, use_sam=use_sam,
                              rho=rho, schedule=schedule)
    if num_replicas == 1:
      return new, metrics
    return _frozen_unless(active, new, state, metrics)

  def chunk(state, inputs, num_steps, active):
    if num_replicas == 1:
      inputs = parallel.select_replica(inputs, data.replica_axes, 0)
      active = active[0]

    def body(index, carry):
      state, totals = carry
      step = parallel.over_replicas(functools.partial(replica_step, index),
                                    num_replicas,
                                    (0, data.replica_axes, 0, 0))
      state, metrics = step(state, inputs,
                            rhos if num_replicas > 1 else config.rho, active)
      return state, jax.tree.map(jnp.add, totals, metrics)

    zeros = parallel.over_replicas(lambda _: _zero_metrics(), num_replicas,
                                   0)(rhos)
    carry = (state, zeros)
    if xla_cpu.steps_per_dispatch(config) == 1:
      state, totals = body(0, carry)
    else:
      state, totals = lax.fori_loop(0, num_steps, body, carry)
    return state, parallel.device_sum(totals)

  replicated = parallel.REPLICATED
  return parallel.jit_shard(
      chunk, mesh, (replicated, data.input_specs, replicated, replicated),
      (replicated, replicated), donate_argnums=(0,),
      compiler_options=xla_cpu.compiler_options(config))


class Stopped(Exception):
  """Training stopped on request after saving a checkpoint of the current
  step; running the same command again resumes it exactly."""


class Diverged(Exception):
  """The training loss (or the weights) became non-finite. The last finite
  checkpoint is kept and summary.json says "status": "diverged".

  With several replicas, those that diverged are frozen at their last finite
  state and the others train on; Diverged is raised once they have finished
  (`others_finished`), or when no replica is left.
  """

  def __init__(self, epoch: int, replicas: list[int], num_replicas: int,
               others_finished: bool = False):
    super().__init__(epoch, replicas)
    self.epoch = epoch
    self.replicas = replicas
    self.num_replicas = num_replicas
    self.others_finished = others_finished
    self.kept_step: int | None = None  # The last finite checkpoint's step.

  def __str__(self) -> str:
    which = (f' (replica {", ".join(map(str, self.replicas))})'
             if self.num_replicas > 1 else '')
    if self.others_finished:
      return (f'the training loss became non-finite from epoch {self.epoch}'
              f'{which}, frozen at its last finite state; the other '
              'replicas finished, and each summary.json records its status; '
              'lower learning_rate (or rho) in a new workdir for the '
              'diverged ones')
    kept = (f'the last finite checkpoint (step {self.kept_step}) is kept'
            if self.kept_step is not None else 'no checkpoint was saved')
    return (f'the training loss became non-finite in epoch {self.epoch}'
            f'{which}; {kept} and summary.json records "status": "diverged"; '
            'lower learning_rate (or rho) in a new workdir')


def _step_of(state: run_state.TrainState) -> int:
  """The global step (replicas share it)."""
  return int(np.ravel(jax.device_get(state.step))[0])


@functools.partial(jax.jit, static_argnums=1)
def _finite_replicas(tree: PyTree, num_replicas: int) -> jax.Array:
  """Whether each replica's part of a stacked tree is finite: [replicas]
  (a scalar for one)."""
  axes = lambda x: tuple(range(num_replicas > 1, x.ndim))
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x), axis=axes(x))
                            for x in jax.tree.leaves(tree)]), axis=0)


@jax.jit
def _splice(state: run_state.TrainState, source: run_state.TrainState,
            take: jax.Array) -> run_state.TrainState:
  """`state` with the replicas where `take` holds replaced by `source`'s
  (parameters, optimizer state and BatchNorm statistics)."""

  def splice(current, replacement):
    where = take.reshape((-1,) + (1,) * (current.ndim - 1))
    return jnp.where(where, replacement, current)

  return state.replace(**{
      name: jax.tree.map(splice, getattr(state, name), getattr(source, name))
      for name in ('params', 'opt_state', 'batch_stats')})


class _Guard:
  """Watches the replicas' losses and weights for non-finite values.

  A replica that diverges while others remain is frozen at its last finite
  state (the newest checkpoint's, or its initial state when there is none
  yet; `progress['frozen']` records it with its epoch, so a resumed run
  keeps it frozen) and the others train on; otherwise Diverged is raised.
  """

  def __init__(self, config: ml_collections.ConfigDict,
               progress: dict[str, Any], mesh: jax.sharding.Mesh,
               last_finite: Callable[[], run_state.TrainState]):
    self.num_replicas = config.num_replicas
    self.frozen: dict[str, int] = progress.setdefault('frozen', {})
    self._replicated = jax.NamedSharding(mesh, parallel.REPLICATED)
    self._last_finite = last_finite
    self.active = self._place()

  def _place(self) -> jax.Array:
    """Which replicas train, on the devices (make_train_chunk's `active`)."""
    return jax.device_put(
        np.array([str(r) not in self.frozen
                  for r in range(self.num_replicas)]), self._replicated)

  def check(self, values: jax.Array, epoch: int) -> None:
    """Raises Diverged if a training replica's value (a loss) is not
    finite; waits for the values only, not for work dispatched after
    them."""
    values = np.ravel(np.asarray(jax.device_get(values), np.float64))
    bad = [r for r, v in enumerate(values)
           if not np.isfinite(v) and str(r) not in self.frozen]
    if bad:
      raise Diverged(epoch + 1, bad, self.num_replicas)

  def freeze(self, state: run_state.TrainState,
             diverged: Diverged) -> run_state.TrainState:
    """`state` with the replicas that diverged frozen, or Diverged raised
    when none would be left to train."""
    if len(self.frozen) + len(diverged.replicas) >= self.num_replicas:
      raise diverged
    take = np.isin(np.arange(self.num_replicas), diverged.replicas)
    state = _splice(state, self._last_finite(), take)
    for replica in diverged.replicas:
      self.frozen[str(replica)] = diverged.epoch
    self.active = self._place()
    logging.warning('The training loss of replica %s became non-finite in '
                    'epoch %d: frozen at its last finite state, recorded as '
                    'diverged; the other replicas train on.',
                    ', '.join(map(str, diverged.replicas)), diverged.epoch)
    return state

  def checked(self, state: run_state.TrainState, values: jax.Array,
              epoch: int) -> run_state.TrainState:
    """check, and freeze what diverged."""
    try:
      self.check(values, epoch)
    except Diverged as e:
      return self.freeze(state, e)
    return state

  def checked_weights(self, state: run_state.TrainState,
                      epoch: int) -> run_state.TrainState:
    """checked on the weights themselves (a loss can be finite at
    non-finite weights, e.g. behind a ReLU)."""
    finite = _finite_replicas(state.params, self.num_replicas)
    return self.checked(state, jnp.where(finite, 0.0, jnp.nan), epoch)


def _host_totals(totals: dict[str, jax.Array]) -> dict[str, Any]:
  """Summed metrics as JSON values (exact: float32 and int32 round-trip)."""
  return {k: np.asarray(v).tolist() for k, v in jax.device_get(totals).items()}


def _device_totals(saved: dict[str, Any]) -> dict[str, jax.Array]:
  """The inverse of _host_totals."""
  dtypes = {k: v.dtype for k, v in _zero_metrics().items()}
  return {k: jnp.asarray(v, dtypes[k]) for k, v in saved.items()}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       should_stop: Callable[[], bool] = lambda: False,
                       evaluators: Sequence[EpochEvaluator] = ()
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
      analysis.measure.training_evaluators(config).

  Raises:
    validate.ConfigError: the config or workdir cannot be trained; nothing
      was written but the workdir's lock file.
    Diverged: the loss became non-finite (summary.json says so).
    Stopped: should_stop() asked to stop; resuming continues exactly.
  """
  workdir = rundir.require_absolute(workdir, 'workdir')
  validate.check_config(config)
  validate.require(
      not config.analysis_every_epochs or evaluators,
      'analysis_every_epochs is set but no evaluator was given: pass '
      'analysis.measure.training_evaluators(config) (main.py does)')
  if config.init_from:
    rundir.require_absolute(config.init_from, 'init_from')
  rundir.check_workdir(workdir, config)
  lock, created = None, not workdir.exists()
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    lock = rundir.WorkdirLock(workdir)
  try:
    return _train(config, workdir, should_stop, evaluators)
  finally:
    if lock:
      # A new workdir refused before training started is removed again.
      lock.release(remove_workdir=created and
                   not (workdir / 'config.json').exists())


def _train(config: ml_collections.ConfigDict, workdir: epath.Path,
           should_stop: Callable[[], bool],
           evaluators: Sequence[EpochEvaluator]) -> dict[str, Any]:
  """train_and_evaluate, once the config is checked and the workdir
  locked."""
  run_start = time.perf_counter()
  done = run_log.already_done(workdir, config)
  if done is not None:
    if done.get('status', outcomes.FINISHED) == outcomes.DIVERGED:
      diverged = Diverged(done['diverged_epoch'], done['diverged_replicas'],
                          config.num_replicas,
                          done.get('others_finished', False))
      diverged.kept_step = rundir.Checkpointer(
          workdir, config.checkpoints_to_keep, read_only=True).latest_step()
      raise diverged
    logging.info('%s already finished its %d epochs; nothing to do (its '
                 'summary.json is left as it is).', workdir, config.num_epochs)
    return done

  mesh = parallel.create_mesh()
  configs = run_state.replica_configs(config)
  num_replicas = len(configs)
  spec = sources.get_spec(config.dataset)
  train_data, eval_sets = input_pipeline.create_datasets(
      config, mesh, [run_state.seed_keys(c.seed) for c in configs])
  steps_per_epoch = train_data.steps_per_epoch
  if steps_per_epoch < 1:
    raise validate.ConfigError(
        f'the training split has fewer examples per process than the batch '
        f'({train_data.local_batch_size}); lower batch_size')
  schedule = optimizers.create_learning_rate_schedule(config, steps_per_epoch)
  model = models.create_model(config, spec.num_classes)
  checkpointer = rundir.Checkpointer(workdir, config.checkpoints_to_keep)
  tx = optimizers.create_optimizer(config, schedule)
  state, progress = run_state.initial_state(
      config, checkpointer, model, train_data.example_shape, tx, train_data,
      mesh)
  step = _step_of(state)
  if (workdir / 'config.json').exists():
    validate.check_extension(rundir.load_config(workdir), config, step,
                    steps_per_epoch, progress['epoch'])
  epoch, position = divmod(step, steps_per_epoch)
  if position:
    logging.info('Resumed from the checkpoint of step %d (epoch %d, step %d '
                 'of %d).', step, epoch + 1, position, steps_per_epoch)
  elif step:
    logging.info('Resumed from the checkpoint at the end of epoch %d.', epoch)
  # Written only now that training can start, so that a run refused above
  # leaves a workdir that accepts the corrected command.
  run_log.log_start(config)
  if jax.process_index() == 0:
    rundir.write_json(workdir / 'config.json', config.to_dict())
  wall_seconds_before = progress['wall_seconds']
  num_params = run_state.count_params(
      parallel.per_replica(state.params, num_replicas)[0])
  logging.info('%s: %s parameters, %d steps per epoch, %d devices, %d '
               'replicas.', config.model, f'{num_params:,}', steps_per_epoch,
               jax.device_count(), num_replicas)

  replica_dirs = rundir.replica_dirs(workdir, num_replicas)
  writers = [run_log.writer(d) for d in replica_dirs]
  if step == 0:
    for writer, single in zip(writers, configs):
      writer.write_hparams(run_log.hparams(single))
  run_writer = writers[0] if num_replicas == 1 else run_log.writer(workdir)
  report_progress = run_log.ProgressScalars(run_writer, step)
  train_chunks = {}  # use_sam -> compiled chunk, built when first needed.
  evaluate = evaluation.make_evaluate(spec, mesh, num_replicas)
  examples_per_step = config.batch_size * num_replicas

  def save(state, **partial_epoch):
    progress['wall_seconds'] = (wall_seconds_before +
                                time.perf_counter() - run_start)
    checkpointer.save(state, {**progress, **partial_epoch})

  def last_finite_state():
    """The newest checkpoint's state, or the initial one if none exists."""
    checkpointer.wait()
    restored = checkpointer.restore(state)
    if restored is not None:
      return restored[0]
    return run_state.fresh_state(config, model, train_data.example_shape, tx,
                                 train_data, mesh)

  guard = _Guard(config, progress, mesh, last_finite_state)
  try:
    for epoch in range(progress['epoch'], config.num_epochs):
      epoch_start = time.perf_counter()
      use_sam = (config.optimizer == 'sam' and
                 epoch >= config.sam_start_epoch)
      # Throughput counts the steps after the first dispatch of each training
      # program in this process, which includes its compilation.
      compiling = use_sam not in train_chunks
      if compiling:
        train_chunks[use_sam] = make_train_chunk(config, train_data, mesh,
                                                 use_sam)
      position = _step_of(state) - epoch * steps_per_epoch
      # Resumed inside the epoch: the sums of the steps before `position`.
      partial = progress.pop('epoch_totals', None)
      chunk_totals = [_device_totals(partial)] if partial else []
      steady_start, steady_steps = epoch_start, steps_per_epoch - position
      previous = None
      for inputs, num_steps in train_data.epoch_chunks(
          epoch, xla_cpu.steps_per_dispatch(config), position,
          config.checkpoint_every_steps):
        state, totals = train_chunks[use_sam](state, inputs, num_steps,
                                              guard.active)
        position += num_steps
        chunk_totals.append(totals)
        # Waiting for the previous dispatch while this one runs keeps the
        # device busy and acts on a divergence or a stop within a dispatch,
        # without a host sync per step.
        if previous is not None:
          state = guard.checked(state, previous, epoch)
        previous = totals['loss']
        if compiling:
          jax.block_until_ready(totals)
          compiling = False
          # benchmarks/startup.py times a process up to this line.
          logging.info('First dispatch of the %s program done (%d steps).',
                       'SAM' if use_sam else 'SGD', num_steps)
          steady_start = time.perf_counter()
          steady_steps -= num_steps
        every = config.checkpoint_every_steps
        # Every process takes the same decision (saving is collective).
        stopping = (position < steps_per_epoch and
                    parallel.any_process(should_stop()))
        if stopping or (position < steps_per_epoch and every and
                        position % every == 0):
          state = guard.checked(state, totals['loss'], epoch)
          state = guard.checked_weights(state, epoch)
          save(state, epoch_totals=_host_totals(
              jax.tree.map(lambda *x: sum(x), *chunk_totals)))
          if stopping:
            raise Stopped(f'stopped at step {_step_of(state)} (epoch '
                          f'{epoch + 1}, step {position} of {steps_per_epoch}) '
                          'with a checkpoint; run the same command to resume')
      train = jax.tree.map(lambda *x: sum(x), *chunk_totals)
      state = guard.checked(state, train['loss'], epoch)
      train = parallel.per_replica(train, num_replicas)
      steady_seconds = time.perf_counter() - steady_start
      progress['steady_examples'] += steady_steps * examples_per_step
      progress['steady_seconds'] += steady_seconds

      while True:  # Again if a replica is frozen on its evaluation loss.
        try:
          evaluated, weights = evaluation.evaluate_sets(
              evaluate, eval_sets, state, spec.task, num_replicas,
              functools.partial(guard.check, epoch=epoch))
          break
        except Diverged as e:
          state = guard.freeze(state, e)
      measured = [{} for _ in range(num_replicas)]
      for evaluator in evaluators:
        if (epoch + 1) % evaluator.every_epochs == 0:
          for scalars, new in zip(measured, evaluator.run(state)):
            scalars.update(new)

      step = (epoch + 1) * steps_per_epoch
      for replica, history in enumerate(progress['histories']):
        if str(replica) in guard.frozen:
          continue  # Its history ends with its last finite epoch.
        record = {
            'epoch': epoch + 1, 'step': step, 'sam': use_sam,
            **{f'train_{k}': v for k, v in
               run_log.mean_metrics(train[replica]).items()},
            **{f'{name}_{k}': v for name, means in evaluated.items()
               for k, v in means[replica].items()},
            'learning_rate': float(schedule(step - 1)),
            'weight_norm': float(weights[replica]['weight_norm']),
            'sparsity': float(weights[replica]['sparsity']),
            # Each replica's share of the training throughput.
            'examples_per_sec': (steady_steps * config.batch_size /
                                 steady_seconds if steady_steps else None),
            **measured[replica],
        }
        history.append(record)
        run_log.write_epoch(writers[replica], record)
      progress['epoch'] = epoch + 1
      report_progress(step)
      run_log.log_epoch(progress, config.num_epochs,
                        time.perf_counter() - epoch_start)
      save(state)
      if (epoch + 1 < config.num_epochs and
          parallel.any_process(should_stop())):
        raise Stopped(f'stopped at step {step} (the end of epoch {epoch + 1}) '
                      'with a checkpoint; run the same command to resume')
  except Diverged as e:
    e.kept_step = checkpointer.latest_step()
    progress['wall_seconds'] = (wall_seconds_before +
                                time.perf_counter() - run_start)
    run_log.write_summaries(
        workdir, config, progress, num_params, train_data.flipped_fractions,
        [outcomes.DIVERGED if r in e.replicas or str(r) in guard.frozen
         else outcomes.INCOMPLETE for r in range(num_replicas)],
        diverged_epoch=e.epoch, diverged_replicas=e.replicas)
    raise
  finally:
    checkpointer.close()
    for writer in {id(w): w for w in writers + [run_writer]}.values():
      writer.close()

  progress['wall_seconds'] = wall_seconds_before + (
      time.perf_counter() - run_start)
  if not guard.frozen:
    return run_log.write_summaries(workdir, config, progress, num_params,
                                   train_data.flipped_fractions,
                                   [outcomes.FINISHED] * num_replicas)
  # Some replicas diverged and were frozen; the others finished.
  frozen = sorted(int(r) for r in guard.frozen)
  diverged = Diverged(min(guard.frozen.values()), frozen, num_replicas,
                      others_finished=True)
  run_log.write_summaries(
      workdir, config, progress, num_params, train_data.flipped_fractions,
      [outcomes.DIVERGED if r in frozen else outcomes.FINISHED
       for r in range(num_replicas)],
      replica_details=[{'diverged_epoch': guard.frozen[str(r)]}
                       if r in frozen else {} for r in range(num_replicas)],
      index_details={'diverged_epoch': diverged.epoch,
                     'diverged_replicas': frozen, 'others_finished': True})
  raise diverged


