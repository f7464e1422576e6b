"""What XLA:CPU needs from the training step of convolutional networks.

Three things, measured on the 2-core CPU this project is developed on
(docs/benchmarks.md, "Convolutions on CPU"); accelerators and the other
models get neither:

* one step per dispatch: inside a loop body XLA:CPU emits the gradient
  convolutions as plain loops;
* no conditionals around convolutions (`cond`): inside a branch it does
  the same (a ResNet-18 with SAM on every second step ran 22.6x slower
  than SGD, LookSAM 4.0x);
* convolutions on Eigen's kernels rather than YNNPACK's, which train a
  ResNet-18 about 1.2x faster here.
"""

from collections.abc import Callable
import functools
from typing import Any

import jax
from jax import lax
import jax.numpy as jnp
import ml_collections

import models

# XLA:CPU's YNNPACK library fusions, as in its default list, but without
# convolutions.
_CPU_CONVOLUTION_OPTIONS = {
    'xla_cpu_experimental_ynn_fusion_type': (
        'LIBRARY_FUSION_TYPE_REDUCE,LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT'
    )
}


def _convolutional_on_cpu(config: ml_collections.ConfigDict) -> bool:
  return (
      models.get(config.model).convolutional
      and jax.local_devices()[0].platform == 'cpu'
  )


def cond(
    config: ml_collections.ConfigDict,
    predicate: jax.Array,
    true_fn: Callable[..., Any],
    false_fn: Callable[..., Any],
    *operands: Any,
) -> Any:
  """lax.cond, except for convolutional models on CPU: both branches and a
  select, which costs their sum but runs the convolutions at full speed."""
  if not _convolutional_on_cpu(config):
    return lax.cond(predicate, true_fn, false_fn, *operands)
  return jax.tree.map(
      lambda a, b: jnp.where(predicate, a, b),
      true_fn(*operands),
      false_fn(*operands),
  )


def steps_per_dispatch(config: ml_collections.ConfigDict) -> int:
  """config.steps_per_dispatch, except 1 for convolutional models on CPU.

  Inside a loop body XLA:CPU leaves the gradient convolutions in layouts
  its library kernels do not take (weight gradients f01b_i01o->01bf, input
  gradients b01f_01oi->b01f in the optimized HLO) and emits them as plain
  loops: a ResNet-18 step in a `fori_loop` runs about 35x slower than the
  same step dispatched alone, whose convolutions are all rewritten to
  b01f_01io->b01f. At a fraction of a second per step, one dispatch per
  step costs nothing measurable. Accelerators and MLPs are not affected.
  """
  if _convolutional_on_cpu(config):
    return 1
  return config.steps_per_dispatch


@functools.cache
def _xla_accepts(options: tuple[tuple[str, str], ...]) -> bool:
  """Whether this XLA compiles with `options` (an experimental option may be
  gone in another version)."""
  try:
    jax.jit(lambda x: x, compiler_options=dict(options)).lower(0.0).compile()
  except jax.errors.JaxRuntimeError:
    return False
  return True


def compiler_options(config: ml_collections.ConfigDict) -> dict[str, str]:
  """XLA options of the training step: _CPU_CONVOLUTION_OPTIONS for
  convolutional models on CPU where XLA knows them, else none."""
  if _convolutional_on_cpu(config) and _xla_accepts(
      tuple(_CPU_CONVOLUTION_OPTIONS.items())
  ):
    return _CPU_CONVOLUTION_OPTIONS
  return {}
