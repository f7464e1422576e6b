"""Checks a config and a workdir before any work, with one-line errors."""

from etils import epath
import jax
import ml_collections
import numpy as np

from configs import default
from configuration import config_util
from configuration.config_util import require
from input_pipeline import graphs
from input_pipeline import label_noise
from input_pipeline import sources
from input_pipeline import tudataset
import models
import optimizers
import rl
from runs import rundir
import sam
import sparsity

OPTIMIZERS = ('sgd', 'sam')


def _one_of(config: ml_collections.ConfigDict, key: str, known) -> None:
  value = config[key]
  require(
      value in known,
      f'unknown {key} {value!r}; known: ' f'{", ".join(sorted(known))}',
  )


def check_config(
    config: ml_collections.ConfigDict, device_checks: bool = True
) -> None:
  """Raises ConfigError for the first problem found in `config`.

  Without `device_checks`, the rules that depend on this process's devices
  (the batch split over them) are left out: for a sweep, which checks every
  run before the first starts, maybe on another machine.
  """
  config_util.check_types(config, default.get_config())
  require(
      config.num_epochs >= 1,
      f'num_epochs must be >= 1, got {config.num_epochs}',
  )
  _one_of(config, 'optimizer', OPTIMIZERS)
  _one_of(config, 'base_optimizer', optimizers.BASE_OPTIMIZERS)
  _one_of(config, 'lr_schedule', optimizers.LR_SCHEDULES)
  _check_replicas(config)
  if config.environment:  # Reinforcement learning: no dataset.
    rl.check(config)
    _check_sam(config)
    return
  _one_of(config, 'pruner', sparsity.PRUNERS)
  _one_of(config, 'label_noise_type', label_noise.LABEL_NOISE_TYPES)
  _one_of(config, 'sam_batchnorm_stats', ('clean', 'perturbed'))

  if config.dataset.startswith(tudataset.PREFIX):
    require(
        0 < config.test_fraction < 1,
        f'test_fraction must be in (0, 1), got {config.test_fraction}',
    )
  spec = sources.dataset_spec(config)
  _check_files(config, spec)
  models.check(config, spec)
  if 'max_nodes' in spec.keys:
    require(
        1 <= config.max_nodes <= graphs.MAX_BUDGET
        and 1 <= config.max_edges <= graphs.MAX_BUDGET,
        f'max_nodes and max_edges must be in [1, {graphs.MAX_BUDGET}], '
        f'got {config.max_nodes} and {config.max_edges}',
    )
  if spec.inputs == 'tokens':
    require(
        config.vocab_size >= 3 and config.max_length >= 1,
        f'vocab_size must be >= 3 (padding, unknown and a word) and '
        f'max_length >= 1, got {config.vocab_size} and '
        f'{config.max_length}',
    )
  require(
      not config.augment or spec.is_image,
      f'augment=True needs images, but {config.dataset} holds '
      f'{spec.inputs}',
  )

  if config.optimizer == 'sam':
    variant = sam.get(config.sam_variant)
    require(
        variant.tasks is None or spec.task.name in variant.tasks,
        f'sam_variant={variant.name} needs a {"/".join(variant.tasks or ())} '
        f'task; {config.dataset} is {spec.task.name}',
    )
  _check_sam(config)
  if (
      device_checks
      and config.sam_m
      and config.batch_size % jax.device_count() == 0
  ):
    per_device = config.batch_size // jax.device_count()
    require(
        per_device % config.sam_m == 0,
        f'sam_m={config.sam_m} must divide the per-device batch '
        f'({config.batch_size} / {jax.device_count()} devices = '
        f'{per_device})',
    )
  require(
      config.num_replicas == 1 or spec.in_memory,
      f'num_replicas > 1 needs an in-memory dataset, not ' f'{config.dataset}',
  )
  require(
      0 <= config.label_noise < 1,
      f'label_noise must be in [0, 1), got {config.label_noise}',
  )
  require(
      not config.label_noise or spec.task.name == 'classification',
      f'label_noise flips class labels; {config.dataset} is '
      f'{spec.task.name}',
  )
  require(
      not config.label_noise or spec.in_memory,
      f'label_noise needs an in-memory dataset, not {config.dataset}',
  )
  require(
      0 <= config.validation_fraction < 1,
      f'validation_fraction must be in [0, 1), got '
      f'{config.validation_fraction}',
  )
  require(
      not config.validation_fraction or spec.in_memory,
      f'validation_fraction needs an in-memory dataset, not '
      f'{config.dataset}',
  )
  require(
      config.epoch_passes >= 1,
      f'epoch_passes must be >= 1, got {config.epoch_passes}',
  )
  require(
      config.epoch_passes == 1 or spec.in_memory,
      f'epoch_passes > 1 needs an in-memory dataset, not {config.dataset}',
  )
  require(
      not config.analysis.get('training_parts') or config.analysis_every_epochs,
      'analysis.training_parts are measured every analysis_every_epochs '
      'epochs; set analysis_every_epochs > 0',
  )
  require(
      config.log_spaced_evals >= 0,
      f'log_spaced_evals must be >= 0, got {config.log_spaced_evals}',
  )
  require(
      not config.log_spaced_evals or spec.in_memory,
      f'log_spaced_evals needs an in-memory dataset (its evaluation sets are '
      f'held on device), not {config.dataset}',
  )
  _check_generated(config)
  if config.init_from:
    source, replica = rundir.run_and_replica(epath.Path(config.init_from))
    require(
        (source / 'config.json').exists() and (source / 'checkpoints').exists(),
        f'init_from={config.init_from} is not a run directory with '
        'checkpoints',
    )
    replicas = rundir.load_config(source).get('num_replicas', 1)
    require(
        replica is not None or replicas == 1,
        f'init_from={config.init_from} holds {replicas} replicas trained '
        'side by side; start from one of them: init_from='
        f'{config.init_from}/replica_<r>, r from 0 to {replicas - 1}',
    )
    require(
        replica is None or replica < replicas,
        f'init_from={config.init_from}: its run has {replicas} replicas '
        f'(0 to {replicas - 1})',
    )
    require(
        config.sparsity == 0,
        'init_from takes the pruning mask of the '
        'run it starts from; leave sparsity at 0',
    )
  require(
      0 <= config.sparsity < 1,
      f'sparsity must be in [0, 1), got {config.sparsity}',
  )

  require(
      config.batch_size >= 1,
      f'batch_size must be >= 1, got ' f'{config.batch_size}',
  )
  require(
      not device_checks or config.batch_size % jax.device_count() == 0,
      f'batch_size {config.batch_size} is not divisible by the '
      f'{jax.device_count()} devices',
  )
  require(
      config.learning_rate > 0,
      f'learning_rate must be > 0, got {config.learning_rate}',
  )
  require(
      0 <= config.momentum < 1,
      f'momentum must be in [0, 1), got {config.momentum}',
  )
  for key in ('adam_b1', 'adam_b2'):
    require(
        0 <= config[key] < 1, f'{key} must be in [0, 1), got ' f'{config[key]}'
    )
  require(config.adam_eps > 0, f'adam_eps must be > 0, got {config.adam_eps}')
  require(
      0 <= config.warmup_epochs < config.num_epochs,
      f'warmup_epochs must be in [0, num_epochs={config.num_epochs}), '
      f'got {config.warmup_epochs}',
  )
  require(
      config.weight_decay >= 0,
      f'weight_decay must be >= 0, got {config.weight_decay}',
  )
  boundaries = tuple(config.lr_boundaries)
  require(
      all(0 < b < 1 for b in boundaries)
      and list(boundaries) == sorted(set(boundaries)),
      'lr_boundaries must be increasing fractions of training in (0, 1), '
      f'got {boundaries}',
  )
  require(
      config.num_train_examples >= 0,
      f'num_train_examples must be >= 0 (0 = all), got '
      f'{config.num_train_examples}',
  )
  for key in ('steps_per_dispatch', 'eval_batch_size', 'checkpoints_to_keep'):
    require(config[key] >= 1, f'{key} must be >= 1, got {config[key]}')
  require(
      config.checkpoint_every_steps >= 0,
      f'checkpoint_every_steps must be >= 0 (0 = at epoch ends only), got '
      f'{config.checkpoint_every_steps}',
  )
  require(
      config.cpu_threads >= 0,
      f'cpu_threads must be >= 0 (0 = as XLA sizes it), got '
      f'{config.cpu_threads}',
  )


def _check_sam(config: ml_collections.ConfigDict) -> None:
  """The SAM section: rho, the variant's own checks, rho's schedule."""
  require(
      config.optimizer != 'sam' or config.rho > 0,
      f'rho must be > 0 for sam, got {config.rho}',
  )
  sam.check(config)
  require(
      0 <= config.sam_start_epoch < config.num_epochs,
      f'sam_start_epoch must be in [0, num_epochs={config.num_epochs}), '
      f'got {config.sam_start_epoch}',
  )
  require(config.sam_m >= 0, f'sam_m must be >= 0, got {config.sam_m}')
  require(
      config.sam_rho_schedule in sam.RHO_SCHEDULES,
      f'sam_rho_schedule must be one of {sam.RHO_SCHEDULES}, got '
      f'{config.sam_rho_schedule!r}',
  )
  require(
      0 <= config.sam_rho_min <= min(config.replica_rho or (config.rho,)),
      f'sam_rho_min must be in [0, rho], got {config.sam_rho_min}',
  )
  require(
      config.sam_rho_schedule == 'learning_rate' or not config.sam_rho_min,
      'sam_rho_min is read only with sam_rho_schedule=learning_rate',
  )
  require(
      config.sam_every_steps >= 1,
      f'sam_every_steps must be >= 1, got {config.sam_every_steps}',
  )


def _check_replicas(config: ml_collections.ConfigDict) -> None:
  """num_replicas, replica_rho and replica_seeds agree."""
  require(
      config.num_replicas >= 1,
      f'num_replicas must be >= 1, got {config.num_replicas}',
  )
  require(
      config.replica_seeds >= 0,
      f'replica_seeds must be >= 0, got {config.replica_seeds}',
  )
  if config.replica_seeds:
    require(
        config.replica_rho
        and config.num_replicas
        == config.replica_seeds * len(config.replica_rho),
        f'replica_seeds={config.replica_seeds} trains each value of '
        'replica_rho from that many seeds: num_replicas must be '
        f'{config.replica_seeds} x len(replica_rho) = '
        f'{config.replica_seeds * len(config.replica_rho)}, got '
        f'{config.num_replicas}',
    )
  else:
    require(
        len(config.replica_rho) in (0, config.num_replicas),
        f'replica_rho has {len(config.replica_rho)} values for '
        f'{config.num_replicas} replicas',
    )
  require(
      not config.replica_rho or config.optimizer == 'sam',
      f"replica_rho sets each replica's rho, which {config.optimizer} "
      'does not read; leave it empty (replicas then differ in their seed '
      'alone)',
  )
  require(
      all(rho > 0 for rho in config.replica_rho),
      f'replica_rho must be > 0, got {tuple(config.replica_rho)}',
  )


def _check_files(config: ml_collections.ConfigDict, spec) -> None:
  """A dataset read from the user's files: that every split is there and
  in its released format (each is read once per process and kept), before
  anything is written."""
  if not spec.download:
    return
  require(
      not (spec.validation_split and config.validation_fraction),
      f'{config.dataset} has a validation split of its own; leave '
      f'validation_fraction at 0, got {config.validation_fraction}',
  )
  for split in ('train', 'test') + ('validation',) * spec.validation_split:
    spec.reader(config, split)


def _check_generated(config: ml_collections.ConfigDict) -> None:
  """The sizes of a regression set generated in-process (synthetic.py)."""
  keys = sources.dataset_spec(config).keys
  if config.dataset == 'maennel_1d':
    require(
        config.num_train_examples == 0,
        'maennel_1d is its 12 points; leave num_train_examples at 0, got '
        f'{config.num_train_examples}',
    )
  for key in ('input_dim', 'teacher_width', 'num_test_examples'):
    if key in keys:
      require(config[key] >= 1, f'{key} must be >= 1, got {config[key]}')
  if 'num_nonzero' in keys:
    require(
        1 <= config.num_nonzero <= config.input_dim,
        f'num_nonzero must be in [1, input_dim={config.input_dim}], got '
        f'{config.num_nonzero}',
    )
  if 'data_seed' in keys:
    require(
        config.data_seed >= -1,
        f"data_seed must be >= 0, or -1 for the run's seed, got "
        f'{config.data_seed}',
    )
    require(
        config.data_seed >= 0 or config.num_replicas == 1,
        'data_seed=-1 draws the data from each seed, but replicas share '
        'their data; train the seeds as separate runs or set data_seed',
    )
  if 'target_noise' in keys:
    require(
        config.target_noise >= 0,
        f'target_noise must be >= 0, got {config.target_noise}',
    )


def check_extension(
    old: ml_collections.ConfigDict,
    new: ml_collections.ConfigDict,
    steps_done: int,
    steps_per_epoch: int,
    epochs_done: int,
) -> None:
  """Allows a run to continue with a changed num_epochs only if the
  learning rate of every step already trained stays the same (e.g. a
  constant schedule); otherwise the run would mix two schedules."""
  if old.num_epochs == new.num_epochs:
    return
  require(
      new.num_epochs >= epochs_done,
      f'num_epochs={new.num_epochs} is fewer '
      f'than the {epochs_done} epochs this run has trained',
  )
  steps = np.arange(steps_done)
  before = optimizers.create_learning_rate_schedule(old, steps_per_epoch)
  after = optimizers.create_learning_rate_schedule(new, steps_per_epoch)
  require(
      np.array_equal(
          np.asarray(jax.vmap(before)(steps)),
          np.asarray(jax.vmap(after)(steps)),
      ),
      f'num_epochs {old.num_epochs} -> {new.num_epochs} changes the learning '
      f'rate of steps already trained (lr_schedule={new.lr_schedule} scales '
      'with the length of training); start a new workdir, e.g. with '
      'init_from=<this run> to continue from its weights',
  )
