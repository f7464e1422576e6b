"""What XLA:CPU gets: a thread pool of config.cpu_threads; and for the
training step of convolutional networks, one step per dispatch and
convolutions off YNNPACK, which compute the same step."""

import logging
import os

import jax
import numpy as np
import pytest

from input_pipeline import on_device
from input_pipeline import sources
import models
import optimizers
from runs import run_log
from runs import run_state
from runtime import parallel
from runtime import xla_cpu
from tests.conftest import run_python
from tests.conftest import small_config
import train_step

# Python that prints how many threads XLA:CPU's pool started in this process
# (XLA names them tf_XLAEigen).
PRINT_POOL_THREADS = (
    "import os; print('pool threads:', [open(f'/proc/self/task/{t}/comm')"
    ".read().strip() for t in os.listdir('/proc/self/task')]"
    ".count('tf_XLAEigen'))"
)


@pytest.mark.parametrize('threads', [0, 1, 3])
def test_cpu_threads_sizes_the_pool_jax_starts(threads):
  # 0 leaves one thread per core of the process's CPU affinity; 1 and 3
  # differ from that on this 2-core machine, and 3 from any single core.
  # pool_size reports what XLA read.
  code = f"""
import sys
from runtime import xla_cpu
xla_cpu.use_threads({threads})
import jax.numpy as jnp
jnp.ones((64, 64)).dot(jnp.ones((64, 64))).block_until_ready()
{PRINT_POOL_THREADS}
print('reported:', xla_cpu.pool_size())
"""
  # Neither of XLA's variables from this environment.
  result = run_python(
      ['-c', code], check=True, env={'PJRT_NPROC': '', 'NPROC': ''}
  )
  expected = threads or len(os.sched_getaffinity(0))
  assert f'pool threads: {expected}\n' in result.stdout
  assert f'reported: {expected}\n' in result.stdout


def test_threads_applied_tells_a_pool_size_jax_did_not_start_with(
    monkeypatch, caplog
):
  # What run_log warns about: a config's cpu_threads in a process whose JAX
  # started without it (a library call, not main.py).
  for variable in ('PJRT_NPROC', 'NPROC'):
    monkeypatch.delenv(variable, raising=False)
  started = len(os.sched_getaffinity(0))
  assert xla_cpu.pool_size() == started
  assert xla_cpu.threads_applied(0) and xla_cpu.threads_applied(started)
  assert not xla_cpu.threads_applied(started + 1)
  with caplog.at_level(logging.INFO):
    run_log.log_start(small_config(cpu_threads=started + 1))
  assert f'XLA:CPU threads: {started}' in caplog.text
  assert f'cpu_threads={started + 1} not applied' in caplog.text


def resnet_config(**keys):
  return small_config(
      **{
          'dataset': 'cifar10',
          'model': 'resnet18',
          'num_filters': 4,
          'batch_size': 8,
          'steps_per_dispatch': 5,
          **keys,
      }
  )


def test_only_convolutional_models_on_cpu_get_them():
  resnet, mlp = resnet_config(), small_config(steps_per_dispatch=5)
  assert xla_cpu.steps_per_dispatch(resnet) == 1
  assert xla_cpu.steps_per_dispatch(mlp) == 5
  assert xla_cpu.compiler_options(resnet) == (
      xla_cpu._CPU_CONVOLUTION_OPTIONS
  )  # pylint: disable=protected-access
  assert not xla_cpu.compiler_options(mlp)
  # An option this XLA does not know is left out rather than failing.
  assert not xla_cpu._xla_accepts((('xla_cpu_no_such_option', 'x'),))  # pylint: disable=protected-access


def test_the_step_without_ynnpack_convolutions_is_the_same_step(monkeypatch):
  # The same training step compiled with and without the options: the
  # options take YNNPACK's convolutions out of the program, and the new
  # weights agree to float32 rounding.
  config = resnet_config()
  spec = sources.dataset_spec(config)
  rng = np.random.default_rng(0)
  split = sources.Split(
      rng.integers(0, 256, (64, 32, 32, 3), np.uint8),
      rng.integers(0, 10, 64).astype(np.int32),
  )
  mesh = parallel.create_mesh()
  data = on_device.OnDeviceTrainData(
      split, spec, config, mesh, [run_state.seed_keys(config.seed)]
  )
  schedule = optimizers.create_learning_rate_schedule(
      config, data.steps_per_epoch
  )
  state = run_state.fresh_state(
      config,
      models.create_model(config, spec.num_classes),
      data.example_shape,
      optimizers.create_optimizer(config, schedule),
      data,
      mesh,
  )
  inputs, steps = next(data.epoch_chunks(0, 1))
  results, programs = [], []
  for with_options in (True, False):
    if not with_options:  # The same step with XLA's defaults.
      monkeypatch.setattr(xla_cpu, 'compiler_options', lambda config: {})
    chunk = train_step.make_train_chunk(config, data, mesh, use_sam=True)
    active = train_step.all_replicas(config)
    compiled = chunk.lower(state, inputs, steps, active).compile()
    programs.append(compiled.as_text())
    results.append(
        jax.device_get(
            compiled(
                jax.tree.map(lambda x: x.copy(), state), inputs, steps, active
            )
        )
    )
  with_options, defaults = programs
  assert with_options.count('__ynn_fusion') < defaults.count('__ynn_fusion')
  (new, totals), (reference, reference_totals) = results
  np.testing.assert_allclose(
      totals['loss'], reference_totals['loss'], rtol=1e-5
  )
  for a, b in zip(
      jax.tree.leaves(new.params), jax.tree.leaves(reference.params)
  ):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_cond_selects_for_convolutions_on_cpu_and_branches_otherwise():
  branches = (lambda x: (x * 2, {'a': x + 1}), lambda x: (x - 1, {'a': x}))
  x = jax.numpy.arange(3.0)
  for config in (
      small_config(),
      small_config(dataset='fashion_mnist', model='resnet18', num_filters=2),
  ):
    for predicate in (True, False):
      expected = branches[0 if predicate else 1](x)
      got = jax.jit(
          lambda p, x, config=config: xla_cpu.cond(config, p, *branches, x)
      )(predicate, x)
      for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(a, b)

  # What each emits: a conditional for the MLP, none for the ResNet.
  def lowered(model):
    config = small_config(model=model, num_filters=2)
    return (
        jax.jit(lambda p, x: xla_cpu.cond(config, p, *branches, x))
        .lower(True, x)
        .as_text()
    )

  assert 'stablehlo.case' in lowered('mlp')
  assert 'stablehlo.case' not in lowered('resnet18')
