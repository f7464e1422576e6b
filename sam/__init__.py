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
paper in the docstring) and its test. A variant reads its own config keys,
named `sam_*` so that reports know SGD ignores them, and checks their values
in `check`. What applies to every variant stays in the training loop:
which batch the ascent sees (`sam_m`, m-sharpness, vmapped over
micro-batches), which pass's BatchNorm statistics are kept
(`sam_batchnorm_stats`) and from which epoch SAM is used
(`sam_start_epoch`).

The geometry the variants share (the ascent in an L2 or adaptive ball, the
projection onto it) is in `geometry`.
"""

from collections.abc import Callable
import dataclasses
import importlib
import pkgutil
from typing import Any

import jax
import ml_collections

from configuration import config_util
from sam.geometry import adaptive_scale
from sam.geometry import ascent_perturbation
from sam.geometry import GradFn
from sam.geometry import project_to_ball
from sam.geometry import sam_gradient

__all__ = [
    'Oracle',
    'Variant',
    'VARIANTS',
    'get',
    'adaptive_scale',
    'ascent_perturbation',
    'project_to_ball',
    'sam_gradient',
]

PyTree = Any
# (the descent gradient, aux at w, aux at the last point evaluated).
Result = tuple[PyTree, Any, Any]


@dataclasses.dataclass(frozen=True)
class Oracle:
  """What a variant gets for one step on one batch (or micro-batch).

  Attributes:
    grad_fn: params -> (gradient of the mean training loss on the batch,
      aux: per-example losses, logits, BatchNorm statistics).
    params: the current weights w.
    rho: the radius of the ball (per replica with replica_rho).
    config: the run's config; the variant reads its own keys.
    step: the global step (0-based).
    learning_rate: the base optimizer's learning rate at this step.
  """

  grad_fn: GradFn
  params: PyTree
  rho: float | jax.Array
  config: ml_collections.ConfigDict
  step: jax.Array
  learning_rate: jax.Array


@dataclasses.dataclass(frozen=True)
class Variant:
  """A sharpness-aware method.

  Attributes:
    name: its `config.sam_variant`.
    keys: the config keys it reads besides rho (each `sam_*`).
    gradient: Oracle -> (descent gradient, aux at w, aux at the last point).
    check: raises config_util.ConfigError for a bad value of its keys.
  """

  name: str
  keys: tuple[str, ...]
  gradient: Callable[[Oracle], Result]
  check: Callable[[ml_collections.ConfigDict], None] = lambda config: None


def _find_variants() -> dict[str, Variant]:
  """The VARIANT of every module of this package, by name."""
  variants = {}
  for module in pkgutil.iter_modules(__path__):
    variant = getattr(
        importlib.import_module(f'{__name__}.{module.name}'), 'VARIANT', None
    )
    if isinstance(variant, Variant):
      variants[variant.name] = variant
  return dict(sorted(variants.items()))


VARIANTS = _find_variants()


def get(name: str) -> Variant:
  """The variant `name`; ConfigError naming the known ones otherwise."""
  config_util.require(
      name in VARIANTS,
      f'unknown sam_variant {name!r}; known: ' f'{", ".join(VARIANTS)}',
  )
  return VARIANTS[name]


def check(config: ml_collections.ConfigDict) -> None:
  """The chosen variant's own checks, and that no other variant's key is
  set away from its default (it would be silently ignored)."""
  variant = get(config.sam_variant)
  variant.check(config)
  from configs import default  # pylint: disable=g-import-not-at-top

  defaults = default.get_config()
  for other in VARIANTS.values():
    for key in other.keys:
      config_util.require(
          key in variant.keys or config[key] == defaults[key],
          f'{key}={config[key]} is read by sam_variant={other.name}, not '
          f'{variant.name}; leave it at its default ({defaults[key]})',
      )
