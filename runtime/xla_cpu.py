"""What XLA:CPU needs: a thread pool sized to the work, and three things
for the training step of convolutional networks.

The thread pool (`use_threads`, config.cpu_threads): XLA:CPU runs the
operations of a loop body as a graph and hands ready ones to its other
threads. A small agent's operations (CartPole's 4 environments) take
microseconds, so the handing over costs more than it gains: on one thread
CartPole's Adam trains about 1.2x faster on a 2-core CPU, and the results
are the same bit for bit (docs/rl.md, "Speed").

The convolutions, measured on the 2-core CPU this project is developed on
(docs/benchmarks.md, "Convolutions on CPU"); accelerators and the other
models get none of them:

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
import os
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


# XLA:CPU sizes its thread pool from this variable when JAX starts its CPU
# backend; unset, one thread per core of the process's CPU affinity.
_THREADS_VARIABLE = 'PJRT_NPROC'


def use_threads(threads: int) -> None:
  """Sizes XLA:CPU's thread pool to `threads` (config.cpu_threads; 0 leaves
  it to XLA). XLA reads the size once, when JAX starts its CPU backend:
  main.py calls this before anything touches a device."""
  if threads > 0:
    os.environ[_THREADS_VARIABLE] = str(threads)


def pool_size() -> int:
  """The size of XLA:CPU's thread pool, as XLA reads it when JAX starts its
  CPU backend."""
  for variable in (_THREADS_VARIABLE, 'NPROC'):  # XLA's order.
    try:
      return max(0, int(os.environ.get(variable, '')))
    except ValueError:  # Unset or not a number: XLA reads on.
      continue
  return len(os.sched_getaffinity(0))


def threads_applied(threads: int) -> bool:
  """Whether config.cpu_threads = `threads` asks for nothing or for the
  pool JAX started with (main.py calls use_threads before JAX starts)."""
  return threads <= 0 or pool_size() == threads


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
