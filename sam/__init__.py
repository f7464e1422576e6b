r"""Sharpness-aware methods as gradient oracles, one module per method.

A method (a *variant*) turns the loss's gradient oracle on the current batch
into the gradient the base optimizer descends with:

    grad_fn(w) = (grad L_B(w), aux)  ->  variant  ->  g_descent

plus the auxiliary outputs of the clean pass (w) and of the last pass
(BatchNorm statistics, logits for the metrics). It is not an optax
transformation because the step needs those outputs, which
`optax.contrib.sam`'s interface does not return.

Each module of this package that defines `VARIANT` (a `Variant`) is a
method, chosen by `config.sam_variant` with `config.optimizer='sam'`; the
package finds them, so adding a method is adding a module (its update and
paper in the docstring) and its test. A variant declares its own config keys
with its paper's defaults (named `sam_*`, so that reports know SGD ignores
them; configs/default.py takes them from here), checks their values in
`check`, and may keep a state from step to step (`init`), which checkpoints,
replicas and resumes carry. What applies to every variant stays in the
training step: which batch the ascent sees (`sam_m`, m-sharpness, vmapped
over micro-batches), which pass's BatchNorm statistics are kept
(`sam_batchnorm_stats`), how rho follows the learning rate
(`sam_rho_schedule`), on which steps the variant runs (`sam_every_steps`) and
from which epoch SAM is used (`sam_start_epoch`).

The geometry the variants share (the ascent in an L2 or adaptive ball, the
projection onto it, a running average of gradients) is in `geometry`; the
helpers below give the descent at a perturbed point (`descend_at`) and the
per-step random keys (`seed_state`, `step_key`).
"""

from collections.abc import Callable, Mapping
import dataclasses
import importlib
import pkgutil
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from configuration import config_util
from sam.geometry import adaptive_scale
from sam.geometry import ascent_direction
from sam.geometry import ascent_perturbation
from sam.geometry import AverageState
from sam.geometry import gaussian_like
from sam.geometry import GradFn
from sam.geometry import project_to_ball
from sam.geometry import sam_gradient

__all__ = [
    'Oracle',
    'Result',
    'Variant',
    'VARIANTS',
    'get',
    'adaptive_scale',
    'AverageState',
    'ascent_direction',
    'ascent_perturbation',
    'gaussian_like',
    'project_to_ball',
    'sam_gradient',
    'descend_at',
    'seed_state',
    'variant_key',
    'step_key',
    'scheduled_rho',
    'defaults',
    'check',
]

PyTree = Any


class Result(NamedTuple):
  """What a variant returns for one step.

  Attributes:
    descent: the gradient the base optimizer descends with.
    clean: aux of the pass at w (per-example losses, logits, BatchNorm
      statistics): the step's metrics come from it.
    last: aux of the last pass evaluated (its BatchNorm statistics are kept
      with sam_batchnorm_stats='perturbed').
    state: the variant's new state (None for a variant without state).
  """

  descent: PyTree
  clean: Any
  last: Any
  state: PyTree = None


@dataclasses.dataclass(frozen=True)
class Oracle:
  """What a variant gets for one step on one batch (or micro-batch).

  Attributes:
    grad_fn: params -> (gradient of the mean training loss on the batch,
      aux: per-example losses, logits, BatchNorm statistics).
    params: the current weights w.
    rho: the radius of the ball at this step (per replica with replica_rho,
      scaled by sam_rho_schedule).
    config: the run's config; the variant reads its own keys.
    step: the global step (0-based).
    learning_rate: the base optimizer's learning rate at this step.
    state: the variant's state (see `Variant.init`), None without one.
    inputs: the batch's inputs (for variants that choose examples).
    labels: the batch's labels.
    gradient_on: (params, inputs, labels, penalty) -> grad_fn's output on
      other inputs; penalty is None or logits -> per-example term added to
      the loss (a distillation term, say).
    losses_on: (params, inputs, labels) -> per-example training losses, a
      forward pass only.
    predict: (params, inputs) -> logits in inference mode (BatchNorm with
      the running statistics), a forward pass only.
    steps_per_epoch: training steps in an epoch.
  """

  grad_fn: GradFn
  params: PyTree
  rho: float | jax.Array
  config: ml_collections.ConfigDict
  step: jax.Array
  learning_rate: jax.Array
  state: PyTree = None
  inputs: jax.Array | None = None
  labels: jax.Array | None = None
  gradient_on: Callable[..., tuple[PyTree, Any]] | None = None
  losses_on: Callable[..., jax.Array] | None = None
  predict: Callable[..., jax.Array] | None = None
  steps_per_epoch: int = 1


# How rho follows the training (config.sam_rho_schedule).
RHO_SCHEDULES = ('constant', 'learning_rate')


def scheduled_rho(
    config: ml_collections.ConfigDict,
    rho: float | jax.Array,
    learning_rate: jax.Array,
) -> float | jax.Array:
  """rho at this step: constant, or proportional to the learning rate
  (GSAM's rho_t = rho_min + (rho - rho_min) * lr_t / lr_max, Zhuang et al.,
  2022, with lr_max the configured learning rate and lr_min 0)."""
  if config.sam_rho_schedule == 'constant':
    return rho
  fraction = learning_rate / config.learning_rate
  return config.sam_rho_min + (rho - config.sam_rho_min) * fraction


def descend_at(
    oracle: 'Oracle', perturbation: PyTree, clean_aux: Any, state: PyTree = None
) -> Result:
  """The Result of descending with grad L(w + e), e = `perturbation`."""
  descent, perturbed_aux = oracle.grad_fn(
      jax.tree.map(jnp.add, oracle.params, perturbation)
  )
  return Result(descent, clean_aux, perturbed_aux, state)


# Folded into a run's seed for its variant's key, rather than split off
# with the run's other keys (which would change every other random choice of
# existing runs).
_VARIANT_KEY_SALT = 0x5A3


def variant_key(seed: int) -> jax.Array:
  """The key a variant's `init` gets in a run (or replica) of `seed`."""
  return jax.random.fold_in(jax.random.key(seed), _VARIANT_KEY_SALT)


def seed_state(
    params: PyTree, config: ml_collections.ConfigDict, key
) -> jax.Array:
  """A variant's `init` for variants that draw random numbers: the key's
  data (saved in checkpoints like any array)."""
  del params, config
  return jax.random.key_data(key)


def step_key(oracle: 'Oracle') -> jax.Array:
  """A key for this step's draws, from the seed_state: the same on every
  device, and the same again when a resumed run reaches this step."""
  return jax.random.fold_in(jax.random.wrap_key_data(oracle.state), oracle.step)


def _no_check(config: ml_collections.ConfigDict) -> None:
  del config


@dataclasses.dataclass(frozen=True)
class Variant:
  """A sharpness-aware method.

  Attributes:
    name: its `config.sam_variant`.
    gradient: Oracle -> Result.
    defaults: the config keys it declares (each `sam_*`), with its paper's
      defaults; configs/default.py gets them from here.
    reads: the keys of the SAM section it reads besides rho (e.g.
      sam_weight_decay_in_ascent).
    check: raises config_util.ConfigError for a bad value of its keys.
    init: (params, config, key) -> its state before the first step, or None
      for a variant without state. The state is saved in checkpoints, kept
      per replica and averaged over devices (its float leaves) after each
      step, so that every device holds the same.
    tasks: the tasks (tasks.TASKS) whose outputs it understands; None: any.
    normalization_only: it perturbs the normalization layers' parameters
      alone, which networks without them (the agents') do not have.
    per_example: it reads the batch's examples (`Oracle.inputs`,
      `losses_on`, `gradient_on`, `predict`), which objectives without
      per-example inputs and labels (the PPO loss) do not offer.
  """

  name: str
  gradient: Callable[[Oracle], Result]
  defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  reads: tuple[str, ...] = ()
  check: Callable[[ml_collections.ConfigDict], None] = _no_check
  init: (
      Callable[[PyTree, ml_collections.ConfigDict, jax.Array], PyTree] | None
  ) = None
  tasks: tuple[str, ...] | None = None
  normalization_only: bool = False
  per_example: bool = False

  @property
  def keys(self) -> tuple[str, ...]:
    """Every config key it reads besides rho."""
    return tuple(self.defaults) + self.reads


# Keys of the SAM section that several variants read (each lists those it
# reads in `Variant.reads`), with their defaults.
SHARED_DEFAULTS = {
    # Whether the ascent direction includes the weight-decay term
    # (grad L + wd * w), i.e. whether the sharpness is that of the
    # regularized loss. False as in Shin et al.'s code; Foret et al.'s code
    # uses True. See `geometry.ascent_direction`.
    'sam_weight_decay_in_ascent': False,
}


def _find_variants() -> dict[str, Variant]:
  """The VARIANT of every module of this package, by name."""
  variants, declared = {}, dict(SHARED_DEFAULTS)
  for module in pkgutil.iter_modules(__path__):
    variant = getattr(
        importlib.import_module(f'{__name__}.{module.name}'), 'VARIANT', None
    )
    if not isinstance(variant, Variant):
      continue
    twice = (set(variant.defaults) & set(declared)) | (
        set(variant.reads) - set(SHARED_DEFAULTS)
    )
    assert not twice, f'{module.name}: keys declared elsewhere or not: {twice}'
    assert all(key.startswith('sam_') for key in variant.defaults), module.name
    declared.update(variant.defaults)
    variants[variant.name] = variant
  return dict(sorted(variants.items()))


VARIANTS = _find_variants()


def defaults() -> dict[str, Any]:
  """The keys the variants declare and share, with their defaults (for
  configs/default.py)."""
  declared = dict(SHARED_DEFAULTS)
  for variant in VARIANTS.values():
    declared.update(variant.defaults)
  return declared


def get(name: str) -> Variant:
  """The variant `name`; ConfigError naming the known ones otherwise."""
  config_util.require(
      name in VARIANTS,
      f'unknown sam_variant {name!r}; known: {", ".join(VARIANTS)}',
  )
  return VARIANTS[name]


def check(config: ml_collections.ConfigDict) -> None:
  """The chosen variant's own checks; that no key it does not read is set
  away from its default (it would be silently ignored); that a variant with
  state sees whole batches (m-sharpness would give each micro-batch its own
  state)."""
  variant = get(config.sam_variant)
  variant.check(config)
  for key, default in defaults().items():
    readers = [v.name for v in VARIANTS.values() if key in v.keys]
    config_util.require(
        key in variant.keys or config[key] == default,
        f'{key}={config[key]} is read by sam_variant='
        f'{"/".join(readers)}, not {variant.name}; leave it at its default '
        f'({default})',
    )
  config_util.require(
      variant.init is None or not config.sam_m,
      f'sam_variant={variant.name} keeps state from step to step, which '
      f'm-sharpness (sam_m={config.sam_m}) would split per micro-batch; use '
      'sam_m=0',
  )
