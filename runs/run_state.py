"""A run's state: the model's parameters and optimizer, how they start and
how they are restored.

`TrainState` carries the parameters, optimizer state, BatchNorm statistics
and pruning mask; `fresh_state` initializes (and prunes at initialization)
every replica from its own seed, `initial_state` resumes from a run
directory's newest checkpoint that restores, `load_checkpoint` loads a run
for analysis. The loss (the dataset's task, see `tasks`) and its gradient
live here too, because pruning at initialization (SNIP) needs them before
the first step.
"""

from collections.abc import Callable
import functools
from typing import Any

from absl import logging
from etils import epath
import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from configs import default
from configuration import config_util
from input_pipeline import feeding
from input_pipeline import sources
import models
import optimizers
from runs import rundir
from runtime import parallel
import sam
import sparsity
import tasks

PyTree = Any


class TrainState(train_state.TrainState):
  """Flax's TrainState plus BatchNorm statistics, the pruning mask and the
  task whose loss it trains (static: not saved, set from the dataset)."""

  batch_stats: PyTree = None
  mask: PyTree = None  # sparsity.compute_mask's output; None when dense.
  # The SAM variant's state (see sam.Variant.init); None without one.
  sam_state: PyTree = None
  # The dtype of the forward and backward passes (config.dtype); the
  # parameters, optimizer and variant states and the gradients stay float32.
  compute_dtype: str = flax.struct.field(pytree_node=False, default='float32')
  task: tasks.Task = flax.struct.field(
      pytree_node=False, default=tasks.TASKS['classification']
  )


def _in_compute_dtype(
    state: TrainState, params: PyTree, inputs: jax.Array
) -> tuple[PyTree, jax.Array]:
  """The parameters and float inputs cast to the compute dtype (the cast is
  differentiated, so gradients come back in the parameters' float32)."""
  if state.compute_dtype == 'float32':
    return params, inputs
  dtype = jnp.dtype(state.compute_dtype)
  cast = (
      lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x
  )
  return jax.tree.map(cast, params), cast(inputs)


def _as_state_dtypes(state: TrainState, logits: jax.Array, batch_stats):
  """Logits and BatchNorm statistics back in float32 (the loss, its
  softmax and the running statistics are computed and kept there)."""
  if state.compute_dtype == 'float32':
    return logits, batch_stats
  return logits.astype(jnp.float32), jax.tree.map(
      lambda x: x.astype(jnp.float32), batch_stats
  )


def predict(state: TrainState, params: PyTree, inputs: jax.Array) -> jax.Array:
  """Logits of normalized `inputs` at `params`, BatchNorm in inference mode."""
  params, inputs = _in_compute_dtype(state, params, inputs)
  logits = state.apply_fn(
      {'params': params, 'batch_stats': state.batch_stats},
      inputs,
      train=False,
  )
  return _as_state_dtypes(state, logits, {})[0]


def inference_logits(
    state: TrainState,
    params: PyTree,
    images: jax.Array,
    spec: sources.DatasetSpec,
) -> jax.Array:
  """Logits of raw `images` at masked `params`, BatchNorm in inference mode
  (evaluation and the analysed loss)."""
  return predict(
      state,
      sparsity.apply_mask(params, state.mask),
      sources.normalize(images, spec),
  )


def training_losses(
    state: TrainState, images: jax.Array, labels: jax.Array, params: PyTree
) -> tuple[jax.Array, jax.Array, PyTree]:
  """(per-example losses, logits, new BatchNorm statistics) at `params`, in
  training mode (BatchNorm normalizes with the batch's statistics)."""
  params, images = _in_compute_dtype(state, params, images)
  logits, updates = state.apply_fn(
      {'params': params, 'batch_stats': state.batch_stats},
      images,
      train=True,
      mutable=['batch_stats'],
  )
  logits, batch_stats = _as_state_dtypes(
      state, logits, updates.get('batch_stats', {})
  )
  return state.task.losses(logits, labels), logits, batch_stats


def loss_gradient(
    state: TrainState,
    images: jax.Array,
    labels: jax.Array,
    params: PyTree,
    penalty: Callable[[jax.Array], jax.Array] | None = None,
) -> tuple[PyTree, tuple[Any, ...]]:
  """Gradient of the mean training loss at `params`, masked.

  `penalty` (logits -> one value per example), if given, is added to the
  loss that is differentiated but not to the losses returned.

  Returns (grads, (per-example losses, logits, new BatchNorm statistics)).
  """

  def loss_fn(params):
    losses, logits, batch_stats = training_losses(state, images, labels, params)
    objective = losses.mean()
    if penalty is not None:
      objective += penalty(logits).mean()
    return objective, (losses, logits, batch_stats)

  grads, aux = jax.grad(loss_fn, has_aux=True)(params)
  # Pruned weights get no gradient, so momentum, weight decay (of a zero
  # weight) and SAM's perturbation all leave them at exactly zero.
  return sparsity.apply_mask(grads, state.mask), aux


def create_train_state(
    model: flax.linen.Module,
    example_shape: tuple[int, ...],
    key: jax.Array,
    tx: optax.GradientTransformation,
    task: tasks.Task = tasks.TASKS['classification'],
    compute_dtype: str = 'float32',
) -> TrainState:
  """Initial, dense state on the host."""
  variables = jax.jit(functools.partial(model.init, train=False))(
      key, jnp.zeros((1,) + tuple(example_shape), jnp.float32)
  )
  return TrainState.create(
      apply_fn=model.apply,
      params=variables['params'],
      tx=tx,
      batch_stats=variables.get('batch_stats', {}),
      mask=None,
      task=task,
      compute_dtype=compute_dtype,
  )


def prune_at_initialization(
    state: TrainState,
    config: ml_collections.ConfigDict,
    key: jax.Array,
    first_batch_gradient: Callable[[], PyTree],
) -> TrainState:
  """Computes the mask and zeroes the pruned weights (a no-op at sparsity 0)."""
  grads = first_batch_gradient() if config.pruner == 'snip' else None
  mask = sparsity.compute_mask(
      config.pruner, config.sparsity, state.params, key, grads
  )
  return state.replace(
      params=sparsity.apply_mask(state.params, mask), mask=mask
  )


def _first_batch_gradient(
    state: TrainState,
    train_data: feeding.TrainFeeder,
    mesh: jax.sharding.Mesh,
    replica: int,
) -> PyTree:
  """Gradient of the mean loss on a replica's first batch (for SNIP)."""
  inputs, _ = next(train_data.epoch_chunks(0, 1))

  def gradient(state, inputs):
    inputs = parallel.select_replica(inputs, train_data.replica_axes, replica)
    batch = train_data.device_batch(inputs, 0, state.step)
    grads, _ = loss_gradient(
        state, batch['images'], batch['labels'], state.params
    )
    return parallel.device_mean(grads)

  return parallel.jit_shard(
      gradient,
      mesh,
      (parallel.REPLICATED, train_data.input_specs),
      parallel.REPLICATED,
  )(state, inputs)


def count_params(params: PyTree) -> int:
  return sum(x.size for x in jax.tree.leaves(params))


def _has_mask(config: ml_collections.ConfigDict) -> bool:
  """Whether the run's state carries a pruning mask."""
  if config.init_from:
    source, _ = rundir.run_and_replica(epath.Path(config.init_from))
    return _has_mask(rundir.load_config(source))
  return config.sparsity > 0


def replica_configs(
    config: ml_collections.ConfigDict,
) -> list[ml_collections.ConfigDict]:
  """The separate runs that a run of `config.num_replicas` replicas trains.

  Replica r is the run with seed config.seed + r (and rho replica_rho[r] if
  given): same initialization, data order, augmentation and label noise,
  so it ends where that run would end. With replica_seeds = S, the
  replicas are S seeds times the L values of replica_rho instead: replica
  r = s * L + j is the run with seed config.seed + s and rho
  replica_rho[j], so that each rho has the seeds of SGD runs seed, ...,
  seed + S - 1 to pair with.
  """
  pairs = default.replica_seeds_and_rhos(config)
  configs = []
  for seed, rho in pairs:
    single = ml_collections.ConfigDict(config.to_dict())
    single.seed = seed
    single.rho = rho
    single.num_replicas = 1
    single.replica_rho = ()
    if 'replica_seeds' in single:
      single.replica_seeds = 0
    configs.append(single)
  return configs


def _initialize_from(state: TrainState, workdir: str) -> TrainState:
  """`state` with another run's final weights, BN statistics and mask
  (`workdir` a run's directory, or a replica's: RUN/replica_<r>).

  The optimizer starts afresh (zero momentum) and the step counter at 0:
  "train with SGD, fine-tune with SAM" is two runs.
  """
  run, replica = rundir.run_and_replica(epath.Path(workdir))
  _, source, _ = load_checkpoint(run)
  if replica is not None:
    source = parallel.replica(source, replica)
  shapes = lambda tree: jax.tree.map(jnp.shape, tree)
  if shapes(source.params) != shapes(state.params):
    raise config_util.ConfigError(
        f'init_from={workdir} holds a different model (parameter shapes '
        'differ); use the same model and width'
    )
  logging.info('Initialized from %s (its step %d).', workdir, int(source.step))
  params = jax.device_get(source.params)
  return state.replace(
      params=params,
      batch_stats=jax.device_get(source.batch_stats),
      mask=jax.device_get(source.mask),
      opt_state=state.tx.init(params),
  )


def fresh_state(
    config: ml_collections.ConfigDict,
    model: flax.linen.Module,
    example_shape: tuple[int, ...],
    tx: optax.GradientTransformation,
    train_data: feeding.TrainFeeder | None,
    mesh: jax.sharding.Mesh,
    initialize: bool = True,
) -> TrainState:
  """Every replica's initial state, stacked, replicated over the devices.

  Each replica is initialized and pruned from its own seed (or starts from
  config.init_from). With initialize=False only the structure is right
  (the target of a checkpoint restore).
  """
  replicated = jax.NamedSharding(mesh, parallel.REPLICATED)
  states = []
  for replica, single in enumerate(replica_configs(config)):
    keys = seed_keys(single.seed)
    state = jax.device_put(
        create_train_state(
            model,
            example_shape,
            keys['init'],
            tx,
            sources.dataset_spec(config).task,
            config.dtype,
        ),
        replicated,
    )
    if not initialize:
      if _has_mask(config):
        state = state.replace(
            mask=jax.tree.map(lambda p: np.ones(p.shape, bool), state.params)
        )
    elif config.init_from:
      state = _initialize_from(state, config.init_from)
    else:
      state = prune_at_initialization(
          state,
          single,
          keys['prune'],
          functools.partial(
              _first_batch_gradient, state, train_data, mesh, replica
          ),
      )
    states.append(jax.device_get(_with_variant_state(state, single)))
  return jax.device_put(parallel.stack(states), replicated)


def _with_variant_state(
    state: TrainState, config: ml_collections.ConfigDict
) -> TrainState:
  """`state` with its SAM variant's initial state (None for SGD and for
  variants without one), from the replica's seed."""
  if config.optimizer != 'sam':
    return state
  init = sam.get(config.sam_variant).init
  if init is None:
    return state
  return state.replace(
      sam_state=init(state.params, config, sam.variant_key(config.seed))
  )


def initial_state(
    config: ml_collections.ConfigDict,
    checkpointer: rundir.Checkpointer,
    model: flax.linen.Module,
    example_shape: tuple[int, ...],
    tx: optax.GradientTransformation,
    train_data: feeding.TrainFeeder,
    mesh: jax.sharding.Mesh,
) -> tuple[TrainState, dict[str, Any]]:
  """The newest checkpoint that restores if there is one, else the fresh
  state; and the run's progress."""
  resume = checkpointer.latest_step() is not None
  state = fresh_state(
      config, model, example_shape, tx, train_data, mesh, initialize=not resume
  )
  restored = checkpointer.restore(state) if resume else None
  if restored is not None:
    return restored
  if resume:  # Every checkpoint was damaged: start again.
    state = fresh_state(config, model, example_shape, tx, train_data, mesh)
  return state, {
      'epoch': 0,
      'histories': [[] for _ in range(config.num_replicas)],
      'wall_seconds': 0.0,
      'steady_examples': 0,
      'steady_seconds': 0.0,
  }


def load_checkpoint(
    workdir: str | epath.Path, config: ml_collections.ConfigDict | None = None
) -> tuple[ml_collections.ConfigDict, TrainState, dict[str, Any]]:
  """(config, state, progress) of a run's newest checkpoint that restores.

  The state is replicated over all devices (replicas stacked on a leading
  axis, see parallel.replica); its optimizer keeps the run's structure but a
  constant learning rate (it is meant for analysis, not for resuming:
  train_and_evaluate resumes by itself).
  """
  workdir = rundir.require_absolute(workdir, 'run directory')
  config = config or rundir.load_config(workdir)
  checkpointer = rundir.Checkpointer(
      workdir, config.checkpoints_to_keep, read_only=True
  )
  if checkpointer.latest_step() is None:
    raise config_util.ConfigError(f'{workdir} has no checkpoint')
  spec = sources.dataset_spec(config)
  tx = optimizers.create_optimizer(
      config, optax.constant_schedule(config.learning_rate)
  )
  model = models.create_model(config, spec.num_classes)
  state = fresh_state(
      config,
      model,
      sources.example_shape(config),
      tx,
      None,
      parallel.create_mesh(),
      initialize=False,
  )
  restored = checkpointer.restore(state)
  checkpointer.close()
  if restored is None:
    raise config_util.ConfigError(f'{workdir} has no checkpoint that restores')
  return (config, *restored)


def seed_keys(seed: int) -> dict[str, jax.Array]:
  """Independent PRNG keys for each random choice of a run, from its seed."""
  names = ('init', 'prune', 'data', 'augment', 'label_noise')
  return dict(zip(names, jax.random.split(jax.random.key(seed), len(names))))
