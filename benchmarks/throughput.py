r"""Steady-state training throughput of SGD and SAM, and the machine's matmul.

  TFDS_DATA_DIR=../shared/tensorflow_datasets python benchmarks/throughput.py \
      --output=/tmp/throughput.json

Measures, in one run and with the training code itself
(train_step.make_train_chunk on on_device.OnDeviceTrainData, whole epochs
dispatched as train.py dispatches them, compilation excluded):

* the Fashion-MNIST MLP (300, 100) at batch 128 (real data from TFDS);
* a narrow CIFAR-style ResNet-18 (num_filters=8) at batch 128, on random
  CIFAR-shaped images (throughput does not depend on pixel values, and
  CIFAR-10 may not be available offline);
* float32 matmul GFLOP/s at the MLP's first-layer shape (128x784 @ 784x300);
* a narrow MLP (75, 25) trained alone and as 8 replicas side by side
  (config.num_replicas), whose ratio is the gain over 8 sequential runs,

and prints the SAM/SGD time ratio (two forward/backward passes: 2.0 is ideal)
and the MLP's GFLOP/s next to the matmul's. FLOPs per step come from XLA's
cost analysis of one compiled training step, i.e. the operations executed.
"""

import json
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from configs import default
from input_pipeline import on_device
from input_pipeline import sources
import models
import optimizers
from runs import run_state
from runtime import parallel
from runtime import xla_cpu
import train_step

flags.DEFINE_string('output', 'throughput.json', 'Where to write the JSON.')
flags.DEFINE_float('min_seconds', 3.0, 'Timing per measurement (seconds).')
flags.DEFINE_integer('repeats', 3, 'Measurements per setting; the best counts.')
FLAGS = flags.FLAGS

MATMUL_SHAPE = (128, 784, 300)
# Replicas side by side: a narrow MLP, where per-step overhead dominates.
NARROW_WIDTHS = (75, 25)
REPLICAS = 8


def matmul_gflops(min_seconds: float, repeats: int) -> float:
  """Dense float32 (m x k) @ (k x n) GFLOP/s, best of `repeats`."""
  m, k, n = MATMUL_SHAPE
  rng = np.random.default_rng(0)
  # Several inputs, so no call can reuse another's result.
  xs = [jnp.asarray(rng.standard_normal((m, k)), jnp.float32) for _ in range(8)]
  w = jnp.asarray(rng.standard_normal((k, n)), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  matmul(xs[0], w).block_until_ready()
  best = 0.0
  for _ in range(repeats):
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
      for x in xs:
        result = matmul(x, w)
      calls += len(xs)
      result.block_until_ready()
    best = max(best, 2 * m * k * n * calls / (time.perf_counter() - start))
  return best / 1e9


def step_flops(config, data, state, mesh) -> float:
  """FLOPs of one training step on all devices, from XLA's cost analysis."""
  one_step = train_step.make_train_chunk(
      config, data, mesh, use_sam=config.optimizer == 'sam'
  )
  inputs, _ = next(data.epoch_chunks(0, 1))
  analysis = (
      one_step.lower(state, inputs, 1, train_step.all_replicas(config))
      .compile()
      .cost_analysis()
  )
  if isinstance(analysis, list):
    analysis = analysis[0]
  return float(analysis['flops']) * jax.device_count()


def measure(
    config, split: sources.Split, min_seconds: float, repeats: int
) -> dict[str, float]:
  """Steady-state training examples/s of `config` on `split`."""
  spec = sources.dataset_spec(config)
  mesh = parallel.create_mesh()
  data = on_device.OnDeviceTrainData(
      split,
      spec,
      config,
      mesh,
      [run_state.seed_keys(c.seed) for c in run_state.replica_configs(config)],
  )
  model = models.create_model(config, spec.num_classes)
  schedule = optimizers.create_learning_rate_schedule(
      config, data.steps_per_epoch
  )
  state = run_state.fresh_state(
      config,
      model,
      data.example_shape,
      optimizers.create_optimizer(config, schedule),
      data,
      mesh,
  )
  flops = step_flops(config, data, state, mesh)
  train_chunk = train_step.make_train_chunk(
      config, data, mesh, use_sam=config.optimizer == 'sam'
  )
  steps_per_dispatch = xla_cpu.steps_per_dispatch(config)
  inputs, steps = next(data.epoch_chunks(0, steps_per_dispatch))
  active = train_step.all_replicas(config)
  state, totals = train_chunk(state, inputs, steps, active)  # Compiles.
  jax.block_until_ready(totals)
  best, epoch = 0.0, 0
  for _ in range(repeats):
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
      # Whole epochs, dispatched as train.py dispatches them.
      epoch += 1
      for inputs, steps in data.epoch_chunks(epoch, steps_per_dispatch):
        state, totals = train_chunk(state, inputs, steps, active)
        done += steps
    jax.block_until_ready((state, totals))
    best = max(
        best,
        done
        * config.batch_size
        * config.num_replicas
        / (time.perf_counter() - start),
    )
  params = run_state.count_params(state.params) // config.num_replicas
  passes = 2 if config.optimizer == 'sam' else 1
  result = {
      'examples_per_sec': best,
      'flops_per_step': flops,
      'gflops': flops * best / (config.batch_size * config.num_replicas) / 1e9,
  }
  if config.model == 'mlp':
    # The usual model-FLOPs convention for dense networks (forward 2N,
    # backward 4N per example and pass). It counts the input gradient of
    # the first layer, which is never computed.
    result['model_gflops'] = 6 * params * passes * best / 1e9
  return result


def mlp_config(optimizer: str):
  config = default.get_config()
  config.dataset = 'fashion_mnist'
  config.model = 'mlp'
  config.num_neurons = (300, 100)
  config.batch_size = 128
  config.optimizer = optimizer
  config.steps_per_dispatch = 200
  return config


def narrow_mlp_config(optimizer: str, num_replicas: int):
  config = mlp_config(optimizer)
  config.num_neurons = NARROW_WIDTHS
  config.num_replicas = num_replicas
  return config


def resnet_config(optimizer: str):
  config = default.get_config()
  config.dataset = 'cifar10'
  config.augment = True
  config.model = 'resnet18'
  config.num_filters = 8
  config.batch_size = 128
  config.optimizer = optimizer
  return config


def random_images(
    count: int, shape: tuple[int, int, int] = (32, 32, 3)
) -> sources.Split:
  """`count` random images of `shape` (CIFAR's by default) and labels:
  throughput does not depend on pixel values, and CIFAR-10 may not be
  available offline."""
  rng = np.random.default_rng(0)
  return sources.Split(
      rng.integers(0, 256, (count, *shape), dtype=np.uint8),
      rng.integers(0, 10, count).astype(np.int32),
  )


def main(argv):
  del argv
  fashion_mnist = sources.load_split(mlp_config('sgd'), train=True)
  results = {
      'devices': [str(d) for d in jax.devices()],
      'matmul_shape': MATMUL_SHAPE,
      'matmul_gflops': matmul_gflops(FLAGS.min_seconds, FLAGS.repeats),
  }
  for name, make_config, split in (
      ('mlp_300_100', mlp_config, fashion_mnist),
      ('resnet18_filters8', resnet_config, random_images(10_000)),
  ):
    for optimizer in ('sgd', 'sam'):
      results[f'{name}/{optimizer}'] = measure(
          make_config(optimizer), split, FLAGS.min_seconds, FLAGS.repeats
      )
    results[f'{name}/sam_sgd_time_ratio'] = (
        results[f'{name}/sgd']['examples_per_sec']
        / results[f'{name}/sam']['examples_per_sec']
    )
  narrow = f'mlp_{"_".join(map(str, NARROW_WIDTHS))}'
  for optimizer in ('sgd', 'sam'):
    for replicas in (1, REPLICAS):
      results[f'{narrow}/{optimizer}/replicas{replicas}'] = measure(
          narrow_mlp_config(optimizer, replicas),
          fashion_mnist,
          FLAGS.min_seconds,
          FLAGS.repeats,
      )
    results[f'{narrow}/{optimizer}/replica_gain'] = (
        results[f'{narrow}/{optimizer}/replicas{REPLICAS}']['examples_per_sec']
        / results[f'{narrow}/{optimizer}/replicas1']['examples_per_sec']
    )
  for optimizer in ('sgd', 'sam'):
    r = results[f'mlp_300_100/{optimizer}']
    r['fraction_of_matmul'] = r['gflops'] / results['matmul_gflops']
    r['model_fraction_of_matmul'] = r['model_gflops'] / results['matmul_gflops']

  print(
      f'matmul {"x".join(map(str, MATMUL_SHAPE))} float32: '
      f'{results["matmul_gflops"]:.1f} GFLOP/s'
  )
  for name in ('mlp_300_100', 'resnet18_filters8'):
    for optimizer in ('sgd', 'sam'):
      r = results[f'{name}/{optimizer}']
      line = (
          f'{name:18s} {optimizer}: {r["examples_per_sec"]:10,.0f} ex/s'
          f'  executed {r["gflops"]:6.1f} GFLOP/s'
      )
      if 'model_gflops' in r:
        line += (
            f' ({100 * r["fraction_of_matmul"]:.0f}% of matmul)'
            f'  model (6N) {r["model_gflops"]:6.1f} GFLOP/s'
            f' ({100 * r["model_fraction_of_matmul"]:.0f}% of matmul)'
        )
      print(line)
    print(
        f'{name:18s} SAM/SGD time ratio: '
        f'{results[f"{name}/sam_sgd_time_ratio"]:.2f} (ideal 2.0)'
    )
  for optimizer in ('sgd', 'sam'):
    one = results[f'{narrow}/{optimizer}/replicas1']['examples_per_sec']
    many = results[f'{narrow}/{optimizer}/replicas{REPLICAS}'][
        'examples_per_sec'
    ]
    print(
        f'{narrow:18s} {optimizer}: 1 model {one:10,.0f} ex/s, {REPLICAS} '
        f'replicas {many:10,.0f} ex/s in all: {many / one:.2f}x the '
        f'throughput of {REPLICAS} sequential runs'
    )
  with open(FLAGS.output, 'w') as f:
    json.dump(results, f, indent=2)
  print(f'wrote {FLAGS.output}')


if __name__ == '__main__':
  app.run(main)
