"""Training and evaluation: SGD or SAM, data-parallel over devices.

Data parallelism is written pmap-style, as per-device code with explicit
collectives, using `jax.shard_map` (which `jax.pmap` itself is built on since
JAX 0.8, and which JAX recommends for new code). The state is replicated;
each device computes gradients on its slice of the global batch (for SAM,
the ascent too) and `lax.pmean` averages them. One call from Python runs up to
`config.steps_per_dispatch` steps inside a `lax.fori_loop`, drawing batches
on device (see input_pipeline.OnDeviceTrainData), so neither host-to-device
copies nor the Python loop sit between steps. Metrics are summed on device
and read once per epoch.
"""

import functools
import time
from typing import Any, Callable

from absl import logging
from clu import metric_writers
from clu import periodic_actions
from etils import epath
import flax
from flax.training import train_state
import jax
from jax import lax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

import input_pipeline
import models
import optimizers
import outcomes
import rundir
import sam
import sparsity
import validate

PyTree = Any
AXIS = input_pipeline.AXIS
REPLICATED = P()


class TrainState(train_state.TrainState):
  """Flax's TrainState plus BatchNorm statistics and the pruning mask."""

  batch_stats: PyTree = None
  mask: PyTree = None  # sparsity.compute_mask's output; None when dense.


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example softmax cross-entropy."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def device_mean(tree: PyTree) -> PyTree:
  """Mean over the devices; the identity on a single device.

  XLA does not elide an all-reduce over one device: on a CPU it costs ~13%
  of an MLP step, so the single-device case skips it (which is why the
  shard_maps below run with check_vma=False).
  """
  return tree if lax.axis_size(AXIS) == 1 else lax.pmean(tree, AXIS)


def device_sum(tree: PyTree) -> PyTree:
  """Sum over the devices; the identity on a single device."""
  return tree if lax.axis_size(AXIS) == 1 else lax.psum(tree, AXIS)


def _parallel(fn: Callable[..., Any], mesh: jax.sharding.Mesh, in_specs,
              out_specs, donate_argnums=()) -> Callable[..., Any]:
  """jit(shard_map(fn)): `fn` is per-device code over the mesh axis AXIS."""
  return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=in_specs,
                               out_specs=out_specs, check_vma=False),
                 donate_argnums=donate_argnums)


def loss_gradient(state: TrainState, images: jax.Array, labels: jax.Array,
                  params: PyTree) -> tuple[PyTree, tuple[Any, ...]]:
  """Gradient of the mean training loss at `params`, masked.

  Returns (grads, (per-example losses, logits, new BatchNorm statistics)).
  """

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, images,
        train=True, mutable=['batch_stats'])
    losses = cross_entropy(logits, labels)
    return losses.mean(), (losses, logits, updates.get('batch_stats', {}))

  grads, aux = jax.grad(loss_fn, has_aux=True)(params)
  # Pruned weights get no gradient, so momentum, weight decay (of a zero
  # weight) and SAM's perturbation all leave them at exactly zero.
  return sparsity.apply_mask(grads, state.mask), aux


def sam_step_gradient(state: TrainState, images: jax.Array,
                      labels: jax.Array, config: ml_collections.ConfigDict,
                      rho: float | jax.Array
                      ) -> tuple[PyTree, tuple[Any, ...]]:
  """SAM's gradient on this device's batch, and (losses, logits, BN stats).

  With config.sam_m = 0 the ascent sees the whole device batch. Otherwise the
  batch is split into micro-batches of sam_m examples, each takes its own
  ascent (vectorized with vmap) and their descent gradients are averaged:
  m-sharpness. Micro-batches are contiguous slices of the global batch, so
  the result does not depend on the number of devices.
  """
  ascent_weight_decay = (config.weight_decay
                         if config.sam_weight_decay_in_ascent else 0.0)
  scale = (sam.adaptive_scale(state.params, config.sam_eta, sparsity.is_kernel)
           if config.sam_adaptive else None)

  def gradient(images, labels):
    grads, clean, perturbed = sam.sam_gradient(
        functools.partial(loss_gradient, state, images, labels),
        state.params, rho, ascent_weight_decay, config.sam_steps, scale)
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


def train_step(state: TrainState, batch: dict[str, jax.Array], *,
               config: ml_collections.ConfigDict, use_sam: bool,
               rho: float | jax.Array
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One SGD or SAM step on this device's batch; runs inside shard_map."""
  images, labels = batch['images'], batch['labels']
  if use_sam:
    grads, (losses, logits, batch_stats) = sam_step_gradient(
        state, images, labels, config, rho)
  else:
    grads, (losses, logits, batch_stats) = loss_gradient(
        state, images, labels, state.params)
  grads = device_mean(grads)
  # Each device normalized with its own batch; averaging the running
  # statistics keeps the devices' copies identical.
  batch_stats = device_mean(batch_stats)
  state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  # Metrics come from the unperturbed pass.
  correct = jnp.argmax(logits, -1) == labels
  flipped = batch.get('flipped', jnp.zeros_like(correct))
  metrics = {'loss': jnp.sum(losses), 'correct': jnp.sum(correct),
             'count': jnp.int32(labels.shape[0]),
             'correct_flipped': jnp.sum(correct & flipped),
             'count_flipped': jnp.sum(flipped)}
  return state, metrics


def _zero_metrics(train: bool = True) -> dict[str, jax.Array]:
  """Zero sums of the metrics; training also counts flipped labels."""
  zeros = {'loss': jnp.float32(0), 'correct': jnp.int32(0),
           'count': jnp.int32(0)}
  if train:
    zeros.update(correct_flipped=jnp.int32(0), count_flipped=jnp.int32(0))
  return zeros


def steps_per_dispatch(config: ml_collections.ConfigDict) -> int:
  """config.steps_per_dispatch, except 1 for convolutional models on CPU.

  XLA:CPU compiles the weight-gradient convolutions inside a loop body
  without its fast (YNNPACK) kernels: a ResNet step in a `fori_loop` runs
  ~10x slower than the same step dispatched alone. Accelerators and MLPs
  are not affected.
  """
  if (config.model in models.CONVOLUTIONAL and
      jax.local_devices()[0].platform == 'cpu'):
    return 1
  return config.steps_per_dispatch


def _over_replicas(fn: Callable[..., Any], num_replicas: int,
                   in_axes) -> Callable[..., Any]:
  """`fn` vectorized over stacked replicas; `fn` itself for one replica."""
  return fn if num_replicas == 1 else jax.vmap(fn, in_axes=in_axes)


def make_train_chunk(config: ml_collections.ConfigDict, data,
                     mesh: jax.sharding.Mesh, use_sam: bool):
  """(state, inputs, num_steps) -> (state, summed metrics), on all devices.

  `data.device_batch(inputs, index, step)` returns this device's batch for
  the `index`-th step of the dispatch (global step `step`). `num_steps` is a
  traced value, so a shorter last dispatch of an epoch does not recompile.
  With steps_per_dispatch(config) == 1 a dispatch is one step, no loop. With
  several replicas the state is stacked and every step is vmapped over it.
  """
  num_replicas = config.num_replicas
  rhos = jnp.asarray([c.rho for c in replica_configs(config)], jnp.float32)

  def replica_step(index, state, inputs, rho):
    batch = data.device_batch(inputs, index, state.step)
    return train_step(state, batch, config=config, use_sam=use_sam, rho=rho)

  def chunk(state, inputs, num_steps):
    if num_replicas == 1:
      inputs = input_pipeline.select_replica(inputs, data.replica_axes, 0)

    def body(index, carry):
      state, totals = carry
      step = _over_replicas(functools.partial(replica_step, index),
                            num_replicas, (0, data.replica_axes, 0))
      state, metrics = step(state, inputs,
                            rhos if num_replicas > 1 else config.rho)
      return state, jax.tree.map(jnp.add, totals, metrics)

    zeros = _over_replicas(lambda _: _zero_metrics(), num_replicas, 0)(rhos)
    carry = (state, zeros)
    if steps_per_dispatch(config) == 1:
      state, totals = body(0, carry)
    else:
      state, totals = lax.fori_loop(0, num_steps, body, carry)
    return state, device_sum(totals)

  return _parallel(chunk, mesh, (REPLICATED, data.input_specs, REPLICATED),
                   (REPLICATED, REPLICATED), donate_argnums=(0,))


def make_evaluate(spec: input_pipeline.DatasetSpec, mesh: jax.sharding.Mesh,
                  num_replicas: int = 1):
  """(state, inputs) -> summed test metrics, weight norm, sparsity.

  `inputs` holds [batches, batch, ...] arrays and a `valid` mask; padded
  examples count for nothing, so each test example counts exactly once.
  Every replica sees the same test set.
  """

  def evaluate(state, inputs):
    params = sparsity.apply_mask(state.params, state.mask)
    variables = {'params': params, 'batch_stats': state.batch_stats}

    def body(totals, batch):
      logits = state.apply_fn(
          variables, input_pipeline.normalize(batch['images'], spec),
          train=False)
      valid = batch['valid']
      correct = (jnp.argmax(logits, -1) == batch['labels']) & valid
      metrics = {
          'loss': jnp.sum(jnp.where(valid, cross_entropy(logits,
                                                         batch['labels']), 0)),
          'correct': jnp.sum(correct), 'count': jnp.sum(valid)}
      return jax.tree.map(jnp.add, totals, metrics), None

    totals, _ = lax.scan(body, _zero_metrics(train=False), inputs)
    return device_sum(totals), {
        'weight_norm': optax.global_norm(params),
        'sparsity': sparsity.kernel_sparsity(params)}

  return _parallel(_over_replicas(evaluate, num_replicas, (0, None)), mesh,
                   (REPLICATED, input_pipeline.EVAL_INPUT_SPECS),
                   (REPLICATED, REPLICATED))


def create_train_state(model: flax.linen.Module,
                       example_shape: tuple[int, ...], key: jax.Array,
                       tx: optax.GradientTransformation) -> TrainState:
  """Initial, dense state on the host."""
  variables = jax.jit(functools.partial(model.init, train=False))(
      key, jnp.zeros((1,) + tuple(example_shape), jnp.float32))
  return TrainState.create(
      apply_fn=model.apply, params=variables['params'], tx=tx,
      batch_stats=variables.get('batch_stats', {}), mask=None)


def prune_at_initialization(state: TrainState, config: ml_collections.ConfigDict,
                            key: jax.Array, first_batch_gradient: Callable[[], PyTree]
                            ) -> TrainState:
  """Computes the mask and zeroes the pruned weights (a no-op at sparsity 0)."""
  grads = first_batch_gradient() if config.pruner == 'snip' else None
  mask = sparsity.compute_mask(config.pruner, config.sparsity, state.params,
                               key, grads)
  return state.replace(params=sparsity.apply_mask(state.params, mask),
                       mask=mask)


def _first_batch_gradient(state: TrainState, train_data,
                          mesh: jax.sharding.Mesh, replica: int) -> PyTree:
  """Gradient of the mean loss on a replica's first batch (for SNIP)."""
  inputs, _ = next(train_data.epoch_chunks(0, 1))

  def gradient(state, inputs):
    inputs = input_pipeline.select_replica(inputs, train_data.replica_axes,
                                           replica)
    batch = train_data.device_batch(inputs, 0, state.step)
    grads, _ = loss_gradient(state, batch['images'], batch['labels'],
                             state.params)
    return device_mean(grads)

  return _parallel(gradient, mesh, (REPLICATED, train_data.input_specs),
                   REPLICATED)(state, inputs)


def _mean_metrics(totals: dict[str, Any]) -> dict[str, float]:
  """Mean loss and accuracies from summed totals.

  With label noise, also the accuracy on the examples whose label was kept
  and, on the flipped ones, the rate of predicting the flipped label (how
  much of the noise the network memorizes).
  """
  totals = jax.device_get(totals)
  count = max(int(totals['count']), 1)
  means = {'loss': float(totals['loss']) / count,
           'accuracy': float(totals['correct']) / count}
  flipped = int(totals.get('count_flipped', 0))
  if flipped:
    means['accuracy_clean'] = (
        (float(totals['correct']) - float(totals['correct_flipped'])) /
        max(count - flipped, 1))
    means['accuracy_flipped'] = float(totals['correct_flipped']) / flipped
  return means


# TensorBoard names of the per-epoch record's entries (others keep theirs).
_TENSORBOARD_NAMES = {
    'train_loss': 'train/loss', 'train_accuracy': 'train/accuracy',
    'train_accuracy_clean': 'train/accuracy_clean',
    'train_accuracy_flipped': 'train/accuracy_flipped',
    'test_loss': 'test/loss', 'test_accuracy': 'test/accuracy',
}


def count_params(params: PyTree) -> int:
  return sum(x.size for x in jax.tree.leaves(params))


def _has_mask(config: ml_collections.ConfigDict) -> bool:
  """Whether the run's state carries a pruning mask."""
  if config.init_from:
    return _has_mask(rundir.load_config(epath.Path(config.init_from)))
  return config.sparsity > 0


def replica_configs(config: ml_collections.ConfigDict
                    ) -> list[ml_collections.ConfigDict]:
  """The separate runs that a run of `config.num_replicas` replicas trains.

  Replica r is the run with seed config.seed + r (and rho replica_rho[r] if
  given): same initialization, data order, augmentation and label noise,
  so it ends where that run would end.
  """
  rhos = tuple(config.replica_rho) or (config.rho,) * config.num_replicas
  configs = []
  for replica, rho in enumerate(rhos):
    single = ml_collections.ConfigDict(config.to_dict())
    single.seed = config.seed + replica
    single.rho = rho
    single.num_replicas = 1
    single.replica_rho = ()
    configs.append(single)
  return configs


def _stack(states: list[TrainState]) -> TrainState:
  """One state for one replica, else the replicas stacked on a new axis."""
  if len(states) == 1:
    return states[0]
  return jax.tree.map(lambda *xs: np.stack(xs), *states)


def _initialize_from(state: TrainState, workdir: str) -> TrainState:
  """`state` with another run's final weights, BN statistics and mask.

  The optimizer starts afresh (zero momentum) and the step counter at 0:
  "train with SGD, fine-tune with SAM" is two runs.
  """
  _, source, _ = load_checkpoint(workdir)
  shapes = lambda tree: jax.tree.map(jnp.shape, tree)
  if shapes(source.params) != shapes(state.params):
    raise validate.ConfigError(
        f'init_from={workdir} holds a different model (parameter shapes '
        'differ); use the same model and width')
  logging.info('Initialized from %s (its step %d).', workdir,
               int(source.step))
  params = jax.device_get(source.params)
  return state.replace(params=params,
                       batch_stats=jax.device_get(source.batch_stats),
                       mask=jax.device_get(source.mask),
                       opt_state=state.tx.init(params))


def fresh_state(config: ml_collections.ConfigDict, model: flax.linen.Module,
                example_shape: tuple[int, ...],
                tx: optax.GradientTransformation, train_data,
                mesh: jax.sharding.Mesh, initialize: bool = True
                ) -> TrainState:
  """Every replica's initial state, stacked, replicated over the devices.

  Each replica is initialized and pruned from its own seed (or starts from
  config.init_from). With initialize=False only the structure is right
  (the target of a checkpoint restore).
  """
  replicated = jax.NamedSharding(mesh, REPLICATED)
  states = []
  for replica, single in enumerate(replica_configs(config)):
    keys = seed_keys(single.seed)
    state = jax.device_put(create_train_state(model, example_shape,
                                              keys['init'], tx), replicated)
    if not initialize:
      if _has_mask(config):
        state = state.replace(mask=jax.tree.map(
            lambda p: np.ones(p.shape, bool), state.params))
    elif config.init_from:
      state = _initialize_from(state, config.init_from)
    else:
      state = prune_at_initialization(
          state, single, keys['prune'],
          functools.partial(_first_batch_gradient, state, train_data, mesh,
                            replica))
    states.append(jax.device_get(state))
  return jax.device_put(_stack(states), replicated)


def _initial_state(config: ml_collections.ConfigDict,
                   checkpointer: rundir.Checkpointer,
                   model: flax.linen.Module, example_shape: tuple[int, ...],
                   tx: optax.GradientTransformation, train_data,
                   mesh: jax.sharding.Mesh
                   ) -> tuple[TrainState, dict[str, Any]]:
  """The newest checkpoint that restores if there is one, else the fresh
  state; and the run's progress."""
  resume = checkpointer.latest_step() is not None
  state = fresh_state(config, model, example_shape, tx, train_data, mesh,
                      initialize=not resume)
  restored = checkpointer.restore(state) if resume else None
  if restored is not None:
    return restored
  if resume:  # Every checkpoint was damaged: start again.
    state = fresh_state(config, model, example_shape, tx, train_data, mesh)
  return state, {'epoch': 0,
                 'histories': [[] for _ in range(config.num_replicas)],
                 'wall_seconds': 0.0, 'steady_examples': 0,
                 'steady_seconds': 0.0}


def load_checkpoint(workdir: str | epath.Path,
                    config: ml_collections.ConfigDict | None = None
                    ) -> tuple[ml_collections.ConfigDict, TrainState,
                               dict[str, Any]]:
  """(config, state, progress) of a run's newest checkpoint that restores.

  The state is replicated over all devices (replicas stacked on a leading
  axis, see replica_state); its optimizer keeps the run's structure but a
  constant learning rate (it is meant for analysis, not for resuming:
  train_and_evaluate resumes by itself).
  """
  workdir = rundir.require_absolute(workdir, 'run directory')
  config = config or rundir.load_config(workdir)
  checkpointer = rundir.Checkpointer(workdir, config.checkpoints_to_keep,
                                     read_only=True)
  if checkpointer.latest_step() is None:
    raise validate.ConfigError(f'{workdir} has no checkpoint')
  spec = input_pipeline.get_spec(config.dataset)
  tx = optimizers.create_optimizer(
      config, optax.constant_schedule(config.learning_rate))
  model = models.create_model(config, spec.num_classes)
  state = fresh_state(config, model, input_pipeline.example_shape(config), tx,
                      None, input_pipeline.create_mesh(), initialize=False)
  restored = checkpointer.restore(state)
  checkpointer.close()
  if restored is None:
    raise validate.ConfigError(f'{workdir} has no checkpoint that restores')
  return (config, *restored)


def replica_state(state: TrainState, replica: int) -> TrainState:
  """One replica of a stacked state."""
  return jax.tree.map(lambda x: x[replica], state)


def seed_keys(seed: int) -> dict[str, jax.Array]:
  """Independent PRNG keys for each random choice of a run, from its seed."""
  names = ('init', 'prune', 'data', 'augment', 'label_noise')
  return dict(zip(names, jax.random.split(jax.random.key(seed), len(names))))


def _writer(logdir: epath.Path) -> metric_writers.MetricWriter:
  """TensorBoard on the first process; nothing on the others."""
  if jax.process_index() > 0:
    return metric_writers.MultiWriter([])
  return metric_writers.AsyncWriter(metric_writers.SummaryWriter(str(logdir)))


def _per_replica(tree: PyTree, num_replicas: int) -> list[PyTree]:
  """Host copies of each replica's slice of an (unstacked if 1) tree."""
  tree = jax.device_get(tree)
  if num_replicas == 1:
    return [tree]
  return [jax.tree.map(lambda x: x[r], tree) for r in range(num_replicas)]


class Stopped(Exception):
  """Training stopped on request after saving a checkpoint of the current
  step; running the same command again resumes it exactly."""


class Diverged(Exception):
  """The training loss (or the weights) became non-finite. The last finite
  checkpoint is kept and summary.json says "status": "diverged"."""

  def __init__(self, epoch: int, replicas: list[int], num_replicas: int):
    super().__init__(epoch, replicas)
    self.epoch = epoch
    self.replicas = replicas
    self.num_replicas = num_replicas
    self.kept_step: int | None = None  # The last finite checkpoint's step.

  def __str__(self) -> str:
    which = (f' (replica {", ".join(map(str, self.replicas))})'
             if self.num_replicas > 1 else '')
    kept = (f'the last finite checkpoint (step {self.kept_step}) is kept'
            if self.kept_step is not None else 'no checkpoint was saved')
    return (f'the training loss became non-finite in epoch {self.epoch}'
            f'{which}; {kept} and summary.json records "status": "diverged"; '
            'lower learning_rate (or rho) in a new workdir')


def _step_of(state: TrainState) -> int:
  """The global step (replicas share it)."""
  return int(np.ravel(jax.device_get(state.step))[0])


@jax.jit
def _all_finite(tree: PyTree) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x))
                            for x in jax.tree.leaves(tree)]))


def _check_finite(values: jax.Array, epoch: int, num_replicas: int) -> None:
  """Raises Diverged if a replica's value (a loss) is not finite; waits for
  the values only, not for work dispatched after them."""
  values = np.ravel(np.asarray(jax.device_get(values), np.float64))
  bad = [r for r, v in enumerate(values) if not np.isfinite(v)]
  if bad:
    raise Diverged(epoch + 1, bad, num_replicas)


def _host_totals(totals: dict[str, jax.Array]) -> dict[str, Any]:
  """Summed metrics as JSON values (exact: float32 and int32 round-trip)."""
  return {k: np.asarray(v).tolist() for k, v in jax.device_get(totals).items()}


def _device_totals(saved: dict[str, Any]) -> dict[str, jax.Array]:
  """The inverse of _host_totals."""
  dtypes = {k: v.dtype for k, v in _zero_metrics().items()}
  return {k: jnp.asarray(v, dtypes[k]) for k, v in saved.items()}


def _hparams(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """TensorBoard hparams: scalars as they are, tuples as strings (so that
  the HParams view can group runs by num_neurons, the sweep axis)."""
  return {k: str(tuple(v)) if isinstance(v, (tuple, list)) else v
          for k, v in config.to_dict().items()
          if isinstance(v, (int, float, str, bool, tuple, list))}


def _already_done(workdir: epath.Path, config: ml_collections.ConfigDict
                  ) -> dict[str, Any] | None:
  """The summary of a run in `workdir` that already ended (finished or
  diverged) with this config's num_epochs, else None."""
  summary = rundir.read_json(workdir / 'summary.json')
  if not isinstance(summary, dict) or summary.get('config', {}).get(
      'num_epochs') != config.num_epochs:
    return None
  return summary


def check_extension(old: ml_collections.ConfigDict,
                    new: ml_collections.ConfigDict, steps_done: int,
                    steps_per_epoch: int, epochs_done: int) -> None:
  """Allows a run to continue with a changed num_epochs only if the
  learning rate of every step already trained stays the same (e.g. a
  constant schedule); otherwise the run would mix two schedules."""
  if old.num_epochs == new.num_epochs:
    return
  validate.require(
      new.num_epochs >= epochs_done, f'num_epochs={new.num_epochs} is fewer '
      f'than the {epochs_done} epochs this run has trained')
  steps = np.arange(steps_done)
  before = optimizers.create_learning_rate_schedule(old, steps_per_epoch)
  after = optimizers.create_learning_rate_schedule(new, steps_per_epoch)
  validate.require(
      np.array_equal(np.asarray(jax.vmap(before)(steps)),
                     np.asarray(jax.vmap(after)(steps))),
      f'num_epochs {old.num_epochs} -> {new.num_epochs} changes the learning '
      f'rate of steps already trained (lr_schedule={new.lr_schedule} scales '
      'with the length of training); start a new workdir, e.g. with '
      'init_from=<this run> to continue from its weights')


def _write_summaries(workdir: epath.Path, config: ml_collections.ConfigDict,
                     progress: dict[str, Any], num_params: int,
                     flipped_fractions: list[float], statuses: list[str],
                     **details: Any) -> dict[str, Any]:
  """Writes each replica's summary.json (and, with replicas, the index in
  workdir/summary.json), adding `details` to each; returns the workdir's
  summary as its file holds it."""
  configs = replica_configs(config)
  num_replicas = len(configs)
  dirs = rundir.replica_dirs(workdir, num_replicas)
  summaries = [
      {**make_summary(single, history, progress, num_params, fraction,
                      num_replicas, status), **details}
      for single, history, fraction, status in zip(
          configs, progress['histories'], flipped_fractions, statuses)]
  if num_replicas == 1:
    summary = summaries[0]
  else:
    summary = {
        'config': config.to_dict(),
        'status': (outcomes.FINISHED if set(statuses) == {outcomes.FINISHED}
                   else outcomes.DIVERGED),
        'num_replicas': num_replicas,
        'epochs': progress['epoch'],
        'wall_seconds': progress['wall_seconds'],
        'train_examples_per_sec': _steady_throughput(progress),
        'replica_summaries': [str(d.relative_to(workdir) / 'summary.json')
                              for d in dirs],
        **details,
    }
  if jax.process_index() == 0:
    for directory, single_summary in zip(dirs, summaries):
      directory.mkdir(parents=True, exist_ok=True)
      rundir.write_json(directory / 'summary.json', single_summary)
    rundir.write_json(workdir / 'summary.json', summary)
  return rundir.as_json(summary)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       should_stop: Callable[[], bool] = lambda: False
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

  Raises:
    validate.ConfigError: the config or workdir cannot be trained; nothing
      was written but the workdir's lock file.
    Diverged: the loss became non-finite (summary.json says so).
    Stopped: should_stop() asked to stop; resuming continues exactly.
  """
  workdir = rundir.require_absolute(workdir, 'workdir')
  validate.check_config(config)
  if config.init_from:
    rundir.require_absolute(config.init_from, 'init_from')
  rundir.check_workdir(workdir, config)
  lock, created = None, not workdir.exists()
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    lock = rundir.WorkdirLock(workdir)
  try:
    return _train(config, workdir, should_stop)
  finally:
    if lock:
      # A new workdir refused before training started is removed again.
      lock.release(remove_workdir=created and
                   not (workdir / 'config.json').exists())


def _train(config: ml_collections.ConfigDict, workdir: epath.Path,
           should_stop: Callable[[], bool]) -> dict[str, Any]:
  """train_and_evaluate, once the config is checked and the workdir
  locked."""
  run_start = time.perf_counter()
  done = _already_done(workdir, config)
  if done is not None:
    if done.get('status', outcomes.FINISHED) == outcomes.DIVERGED:
      diverged = Diverged(done['diverged_epoch'], done['diverged_replicas'],
                          config.num_replicas)
      diverged.kept_step = rundir.Checkpointer(
          workdir, config.checkpoints_to_keep, read_only=True).latest_step()
      raise diverged
    logging.info('%s already finished its %d epochs; nothing to do (its '
                 'summary.json is left as it is).', workdir, config.num_epochs)
    return done

  mesh = input_pipeline.create_mesh()
  configs = replica_configs(config)
  num_replicas = len(configs)
  spec = input_pipeline.get_spec(config.dataset)
  train_data, eval_data = input_pipeline.create_datasets(
      config, mesh, [seed_keys(c.seed) for c in configs])
  steps_per_epoch = train_data.steps_per_epoch
  if steps_per_epoch < 1:
    raise validate.ConfigError(
        f'the training split has fewer examples per process than the batch '
        f'({train_data.local_batch_size}); lower batch_size')
  schedule = optimizers.create_learning_rate_schedule(config, steps_per_epoch)
  model = models.create_model(config, spec.num_classes)
  checkpointer = rundir.Checkpointer(workdir, config.checkpoints_to_keep)
  state, progress = _initial_state(
      config, checkpointer, model, train_data.example_shape,
      optimizers.create_optimizer(config, schedule), train_data, mesh)
  step = _step_of(state)
  if (workdir / 'config.json').exists():
    check_extension(rundir.load_config(workdir), config, step,
                    steps_per_epoch, progress['epoch'])
  epoch, position = divmod(step, steps_per_epoch)
  if position:
    logging.info('Resumed from the checkpoint of step %d (epoch %d, step %d '
                 'of %d).', step, epoch + 1, position, steps_per_epoch)
  elif step:
    logging.info('Resumed from the checkpoint at the end of epoch %d.', epoch)
  # Written only now that training can start, so that a run refused above
  # leaves a workdir that accepts the corrected command.
  if jax.process_index() == 0:
    rundir.write_json(workdir / 'config.json', config.to_dict())
  wall_seconds_before = progress['wall_seconds']
  num_params = count_params(_per_replica(state.params, num_replicas)[0])
  logging.info('%s: %s parameters, %d steps per epoch, %d devices, %d '
               'replicas.', config.model, f'{num_params:,}', steps_per_epoch,
               jax.device_count(), num_replicas)

  replica_dirs = rundir.replica_dirs(workdir, num_replicas)
  writers = [_writer(d) for d in replica_dirs]
  if step == 0:
    for writer, single in zip(writers, configs):
      writer.write_hparams(_hparams(single))
  # Logs steps/s, the ETA and the share of time spent evaluating, at most
  # once a minute (it is called at the end of each epoch).
  run_writer = writers[0] if num_replicas == 1 else _writer(workdir)
  report_progress = periodic_actions.ReportProgress(
      num_train_steps=config.num_epochs * steps_per_epoch, writer=run_writer)
  train_chunks = {}  # use_sam -> compiled chunk, built when first needed.
  evaluate = make_evaluate(spec, mesh, num_replicas)
  analyzers = _training_analyzers(config, configs, mesh)
  examples_per_step = config.batch_size * num_replicas

  def save(state, **partial_epoch):
    progress['wall_seconds'] = (wall_seconds_before +
                                time.perf_counter() - run_start)
    checkpointer.save(state, {**progress, **partial_epoch})

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
          epoch, steps_per_dispatch(config), position,
          config.checkpoint_every_steps):
        state, totals = train_chunks[use_sam](state, inputs, num_steps)
        position += num_steps
        chunk_totals.append(totals)
        # Waiting for the previous dispatch while this one runs keeps the
        # device busy and acts on a divergence or a stop within a dispatch,
        # without a host sync per step.
        if previous is not None:
          _check_finite(previous, epoch, num_replicas)
        previous = totals['loss']
        if compiling:
          jax.block_until_ready(totals)
          compiling = False
          steady_start = time.perf_counter()
          steady_steps -= num_steps
        every = config.checkpoint_every_steps
        if position < steps_per_epoch and (
            should_stop() or (every and position % every == 0)):
          _check_finite(totals['loss'], epoch, num_replicas)
          if not _all_finite(state.params):
            raise Diverged(epoch + 1, list(range(num_replicas)), num_replicas)
          save(state, epoch_totals=_host_totals(
              jax.tree.map(lambda *x: sum(x), *chunk_totals)))
          if should_stop():
            raise Stopped(f'stopped at step {_step_of(state)} (epoch '
                          f'{epoch + 1}, step {position} of {steps_per_epoch}) '
                          'with a checkpoint; run the same command to resume')
      train = jax.tree.map(lambda *x: sum(x), *chunk_totals)
      _check_finite(train['loss'], epoch, num_replicas)
      train = _per_replica(train, num_replicas)
      steady_seconds = time.perf_counter() - steady_start
      progress['steady_examples'] += steady_steps * examples_per_step
      progress['steady_seconds'] += steady_seconds

      with report_progress.timed('eval'):
        test_totals = None
        for inputs in eval_data.groups():
          totals, weights = evaluate(state, inputs)
          test_totals = totals if test_totals is None else jax.tree.map(
              jnp.add, test_totals, totals)
        _check_finite(test_totals['loss'] + weights['weight_norm'], epoch,
                      num_replicas)
        test = _per_replica(test_totals, num_replicas)
        weights = _per_replica(weights, num_replicas)
      measured = [{}] * num_replicas
      if analyzers and (epoch + 1) % config.analysis_every_epochs == 0:
        with report_progress.timed('analysis'):
          measured = _analyze(analyzers, state, num_replicas)

      step = (epoch + 1) * steps_per_epoch
      for replica, history in enumerate(progress['histories']):
        record = {
            'epoch': epoch + 1, 'step': step, 'sam': use_sam,
            **{f'train_{k}': v for k, v in
               _mean_metrics(train[replica]).items()},
            **{f'test_{k}': v for k, v in
               _mean_metrics(test[replica]).items()},
            'learning_rate': float(schedule(step - 1)),
            'weight_norm': float(weights[replica]['weight_norm']),
            'sparsity': float(weights[replica]['sparsity']),
            # Each replica's share of the training throughput.
            'examples_per_sec': (steady_steps * config.batch_size /
                                 steady_seconds if steady_steps else None),
            **measured[replica],
        }
        history.append(record)
        writers[replica].write_scalars(step, {
            _TENSORBOARD_NAMES.get(k, k): v for k, v in record.items()
            if k not in ('epoch', 'step', 'sam') and v is not None})
      progress['epoch'] = epoch + 1
      report_progress(step)
      _log_epoch(progress, config.num_epochs,
                 time.perf_counter() - epoch_start)
      save(state)
      if should_stop() and epoch + 1 < config.num_epochs:
        raise Stopped(f'stopped at step {step} (the end of epoch {epoch + 1}) '
                      'with a checkpoint; run the same command to resume')
  except Diverged as e:
    e.kept_step = checkpointer.latest_step()
    progress['wall_seconds'] = (wall_seconds_before +
                                time.perf_counter() - run_start)
    _write_summaries(
        workdir, config, progress, num_params, train_data.flipped_fractions,
        [outcomes.DIVERGED if r in e.replicas else outcomes.INCOMPLETE
         for r in range(num_replicas)], diverged_epoch=e.epoch,
        diverged_replicas=e.replicas)
    raise
  finally:
    checkpointer.close()
    for writer in {id(w): w for w in writers + [run_writer]}.values():
      writer.flush()

  progress['wall_seconds'] = wall_seconds_before + (
      time.perf_counter() - run_start)
  return _write_summaries(workdir, config, progress, num_params,
                          train_data.flipped_fractions,
                          [outcomes.FINISHED] * num_replicas)


def _training_analyzers(config: ml_collections.ConfigDict,
                        configs: list[ml_collections.ConfigDict],
                        mesh: jax.sharding.Mesh) -> list[Any]:
  """One analysis.Analyzer per replica if config.analysis_every_epochs, else
  []. Built before the first epoch so that a bad analysis setting fails
  before any training."""
  if not config.analysis_every_epochs:
    return []
  # analysis measures TrainStates with this module's losses: imported here,
  # where it is needed, rather than in a cycle at the top of both modules.
  import analysis  # pylint: disable=g-import-not-at-top
  return analysis.replica_analyzers(configs, mesh)


def _analyze(analyzers: list[Any], state: TrainState,
             num_replicas: int) -> list[dict[str, float]]:
  """Each replica's Analyzer.training_scalars, with the seconds it took
  (the first time including compilation)."""
  measured = []
  for replica, analyzer in enumerate(analyzers):
    start = time.perf_counter()
    scalars = analyzer.training_scalars(
        replica_state(state, replica) if num_replicas > 1 else state)
    seconds = time.perf_counter() - start
    logging.info('replica %d: top Hessian eigenvalue %.4g, trace %.4g, '
                 'one-step sharpness %.4g (%.1fs)', replica,
                 scalars['hessian/top_eigenvalue'], scalars['hessian/trace'],
                 scalars['sharpness/one_step'], seconds)
    measured.append({**scalars, 'analysis/seconds': seconds})
  return measured


def _log_epoch(progress: dict[str, Any], num_epochs: int,
               seconds: float) -> None:
  """One short line per epoch (means over replicas, if several)."""
  last = [history[-1] for history in progress['histories']]
  mean = lambda key: float(np.mean([r[key] for r in last]))
  replicas = f' (mean of {len(last)} replicas)' if len(last) > 1 else ''
  logging.info(
      'epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%'
      '  lr %.3g  %.2fs%s', progress['epoch'], num_epochs,
      mean('train_loss'), 100 * mean('train_accuracy'), mean('test_loss'),
      100 * mean('test_accuracy'), last[0]['learning_rate'], seconds,
      replicas)


def _steady_throughput(progress: dict[str, Any]) -> float | None:
  """Training examples per second after compilation, evaluation excluded."""
  seconds = progress['steady_seconds']
  return progress['steady_examples'] / seconds if seconds > 0 else None


def make_summary(config: ml_collections.ConfigDict,
                 history: list[dict[str, Any]], progress: dict[str, Any],
                 num_params: int, flipped_fraction: float,
                 num_replicas: int = 1,
                 status: str = outcomes.FINISHED) -> dict[str, Any]:
  """One run's (or replica's) results, as written to summary.json.

  `status` is outcomes.FINISHED, or DIVERGED / INCOMPLETE for a run that
  stopped early: its final_* entries are then those of the last finite
  epoch (None if there was none).
  """
  final = history[-1] if history else {}
  best = (max(history, key=lambda r: r['test_accuracy']) if history else {})
  throughput = _steady_throughput(progress)
  return {
      'config': config.to_dict(),
      'status': status,
      'num_params': num_params,
      'sparsity': final.get('sparsity'),
      'final_test_accuracy': final.get('test_accuracy'),
      'final_test_loss': final.get('test_loss'),
      'best_test_accuracy': best.get('test_accuracy'),
      'best_epoch': best.get('epoch'),
      'final_train_loss': final.get('train_loss'),
      'final_train_accuracy': final.get('train_accuracy'),
      # With label noise: the fraction of training labels flipped, and the
      # final epoch's accuracy on the kept labels and on the flipped ones.
      'label_noise_flipped_fraction': flipped_fraction,
      'final_train_accuracy_clean': final.get('train_accuracy_clean'),
      'final_train_accuracy_flipped': final.get('train_accuracy_flipped'),
      'epochs': final.get('epoch', 0),
      'steps': final.get('step', 0),
      'num_devices': jax.device_count(),
      'wall_seconds': progress['wall_seconds'],
      # Training examples per second after compilation, evaluation excluded;
      # replicas trained side by side share it.
      'train_examples_per_sec': (throughput / num_replicas
                                 if throughput else None),
      'history': history,
  }
