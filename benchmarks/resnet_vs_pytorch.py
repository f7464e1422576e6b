r"""A CIFAR ResNet-18 on the CPU: this project's training step against
PyTorch eager's, SGD and SAM, on CIFAR-shaped and Fashion-MNIST-shaped
images.

  python -m benchmarks.resnet_vs_pytorch --pytorch_python=TORCH_ENV/bin/python \
      [--num_filters=16] [--batch_size=128] [--output=resnet_vs_pytorch.json]

TORCH_ENV is a separate environment with `pip install torch` (not a
requirement of this project). Both sides train the same network
(models/resnet.py's resnet18; benchmarks/resnet_pytorch.py rebuilds it in
PyTorch) at the same batch size on random images of each shape (32x32x3 as
dataset=cifar10, 28x28x1 as dataset=fashion_mnist): here with the training
code as main.py runs it (throughput.measure: whole epochs of
OnDeviceTrainData, one jitted step per dispatch on CPU, the batch gathered,
augmented for CIFAR and normalized on device), there eagerly on a batch
already in memory, in PyTorch's default (NCHW) layout and in channels-last.
The three are timed in turn, `--rounds` times, and the best images/s of each
counts.
"""

import json
import pathlib
import subprocess

from absl import app
from absl import flags

from benchmarks import throughput
from runtime import compilation_cache

flags.DEFINE_string(
    'pytorch_python', None, 'The Python interpreter that has torch.'
)
flags.DEFINE_integer('num_filters', 16, "The ResNet-18's width.")
flags.DEFINE_integer('batch_size', 128, 'Images per step.')
flags.DEFINE_integer('rounds', 2, 'Times each side is timed, in turn.')
flags.mark_flags_as_required(['pytorch_python'])
# --min_seconds and --output are throughput.py's.
flags.FLAGS.set_default('output', 'resnet_vs_pytorch.json')
FLAGS = flags.FLAGS


# (name, image shape, dataset whose normalization and augmentation the
# training code applies).
SHAPES = (
    ('32x32x3', (32, 32, 3), 'cifar10'),
    ('28x28x1', (28, 28, 1), 'fashion_mnist'),
)


def pytorch(
    shape: tuple[int, int, int], channels_last: bool
) -> dict[str, float]:
  """PyTorch eager's images/s for SGD and SAM (resnet_pytorch.py)."""
  command = [
      FLAGS.pytorch_python,
      str(pathlib.Path(__file__).with_name('resnet_pytorch.py')),
      f'--num_filters={FLAGS.num_filters}',
      f'--batch_size={FLAGS.batch_size}',
      f'--image_shape={",".join(map(str, shape))}',
      f'--min_seconds={FLAGS.min_seconds}',
      '--repeats=1',
  ]
  if channels_last:
    command.append('--channels_last')
  done = subprocess.run(command, capture_output=True, text=True, check=True)
  return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  compilation_cache.enable(None)  # Later rounds load the compiled steps.
  best = {}
  for _ in range(FLAGS.rounds):
    for shape_name, shape, dataset in SHAPES:
      images = throughput.random_images(2_000, shape)
      for optimizer in ('sgd', 'sam'):
        config = throughput.resnet_config(optimizer)
        config.dataset = dataset
        config.augment = dataset == 'cifar10'
        config.num_filters = FLAGS.num_filters
        config.batch_size = FLAGS.batch_size
        measured = throughput.measure(config, images, FLAGS.min_seconds, 1)
        name = f'{shape_name}/jax/{optimizer}'
        best[name] = max(best.get(name, 0.0), measured['examples_per_sec'])
      for layout, channels_last in (('nchw', False), ('channels_last', True)):
        measured = pytorch(shape, channels_last)
        for optimizer in ('sgd', 'sam'):
          name = f'{shape_name}/pytorch_{layout}/{optimizer}'
          best[name] = max(best.get(name, 0.0), measured[optimizer])
  results = {
      'num_filters': FLAGS.num_filters,
      'batch_size': FLAGS.batch_size,
      'images_per_second': best,
  }
  for shape_name, _, _ in SHAPES:
    for optimizer in ('sgd', 'sam'):
      for layout in ('nchw', 'channels_last'):
        results[f'{shape_name}/jax_over_pytorch_{layout}/{optimizer}'] = (
            best[f'{shape_name}/jax/{optimizer}']
            / best[f'{shape_name}/pytorch_{layout}/{optimizer}']
        )
  print(json.dumps(results, indent=2))
  with open(FLAGS.output, 'w') as f:
    json.dump(results, f, indent=2)


if __name__ == '__main__':
  app.run(main)
