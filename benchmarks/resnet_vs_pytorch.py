r"""A CIFAR ResNet-18 on the CPU: this project's training step against
PyTorch eager's, SGD and SAM.

  python -m benchmarks.resnet_vs_pytorch --pytorch_python=TORCH_ENV/bin/python \
      [--num_filters=16] [--batch_size=128] [--output=resnet_vs_pytorch.json]

TORCH_ENV is a separate environment with `pip install torch` (not a
requirement of this project). Both sides train the same network
(models/resnet.py's resnet18; benchmarks/resnet_pytorch.py rebuilds it in
PyTorch) at the same batch size on random CIFAR-shaped images: here with
the training code itself (throughput.measure: one jitted step per dispatch
on CPU, the batch gathered, augmented and normalized on device), there
eagerly on a batch already in memory, in PyTorch's default (NCHW) layout
and in channels-last. The three are timed in turn, `--rounds` times, and the
best images/s of each counts.
"""

import json
import pathlib
import subprocess

from absl import app
from absl import flags

from benchmarks import throughput
import compilation_cache

flags.DEFINE_string('pytorch_python', None,
                    'The Python interpreter that has torch.')
flags.DEFINE_integer('num_filters', 16, 'The ResNet-18\'s width.')
flags.DEFINE_integer('batch_size', 128, 'Images per step.')
flags.DEFINE_integer('rounds', 2, 'Times each side is timed, in turn.')
flags.mark_flags_as_required(['pytorch_python'])
# --min_seconds and --output are throughput.py's.
flags.FLAGS.set_default('output', 'resnet_vs_pytorch.json')
FLAGS = flags.FLAGS


def pytorch(channels_last: bool) -> dict[str, float]:
  """PyTorch eager's images/s for SGD and SAM (resnet_pytorch.py)."""
  command = [FLAGS.pytorch_python,
             str(pathlib.Path(__file__).with_name('resnet_pytorch.py')),
             f'--num_filters={FLAGS.num_filters}',
             f'--batch_size={FLAGS.batch_size}',
             f'--min_seconds={FLAGS.min_seconds}', '--repeats=1']
  if channels_last:
    command.append('--channels_last')
  done = subprocess.run(command, capture_output=True, text=True, check=True)
  return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  compilation_cache.enable(None)  # Later rounds load the compiled steps.
  images = throughput.cifar_shaped(2_000)
  best = {}
  for _ in range(FLAGS.rounds):
    for optimizer in ('sgd', 'sam'):
      config = throughput.resnet_config(optimizer)
      config.num_filters = FLAGS.num_filters
      config.batch_size = FLAGS.batch_size
      measured = throughput.measure(config, images, FLAGS.min_seconds, 1)
      name = f'jax/{optimizer}'
      best[name] = max(best.get(name, 0.0), measured['examples_per_sec'])
    for layout, channels_last in (('nchw', False), ('channels_last', True)):
      measured = pytorch(channels_last)
      for optimizer in ('sgd', 'sam'):
        name = f'pytorch_{layout}/{optimizer}'
        best[name] = max(best.get(name, 0.0), measured[optimizer])
  results = {'num_filters': FLAGS.num_filters,
             'batch_size': FLAGS.batch_size,
             'images_per_second': best}
  for optimizer in ('sgd', 'sam'):
    for layout in ('nchw', 'channels_last'):
      results[f'jax_over_pytorch_{layout}/{optimizer}'] = (
          best[f'jax/{optimizer}'] / best[f'pytorch_{layout}/{optimizer}'])
  print(json.dumps(results, indent=2))
  with open(FLAGS.output, 'w') as f:
    json.dump(results, f, indent=2)


if __name__ == '__main__':
  app.run(main)
