r"""The cost of every SAM variant: one training step's time against SGD's.

  TFDS_DATA_DIR=../shared/tensorflow_datasets \
      python -m benchmarks.variant_cost --output=/tmp/variant_cost.json

Times, with the training code itself (benchmarks/throughput.py's `measure`:
whole epochs dispatched as train.py dispatches them, compilation excluded,
best of --repeats), SGD, every variant of the sam package at its defaults
(MESA with its distillation on from the first step), SAM on every second
step (sam_every_steps=2) and SAM in bfloat16, on

* the Fashion-MNIST MLP (300, 100) at batch 128 (SAM-ON is skipped: the
  MLP has no normalization layer), and
* the CIFAR ResNet-18 (num_filters=8, batch 128, random CIFAR-shaped
  images),

and prints each one's examples/s and its time per step relative to SGD
(SAM's two passes: 2.0 is ideal) with the FLOPs XLA executes per step, also
relative to SGD's (lax.cond counts both branches: LookSAM's FLOPs are SAM's
although its reuse steps run one pass).
"""

import json

from absl import app
from absl import flags
import jax

from benchmarks import throughput
from input_pipeline import sources
import models
import sam

# --output, --min_seconds and --repeats are throughput.py's flags.
flags.DEFINE_list('models', ['mlp', 'resnet18'], 'Which of the two models.')
flags.DEFINE_list('methods', [], 'Rows to time (default: all of METHODS).')
FLAGS = flags.FLAGS


def methods() -> dict[str, dict[str, object]]:
  """Each row's config overrides, by name."""
  rows = {'sgd': dict(optimizer='sgd')}
  for name in sam.VARIANTS:
    rows[name] = dict(optimizer='sam', sam_variant=name)
  rows['mesa']['sam_mesa_start_epoch'] = 0
  rows['sam_every_2'] = dict(optimizer='sam', sam_every_steps=2)
  rows['sam_bfloat16'] = dict(optimizer='sam', dtype='bfloat16')
  return rows


MODELS = {
    'mlp': (throughput.mlp_config, None),
    'resnet18': (throughput.resnet_config, (32, 32, 3)),
}


def cost_table(
    model: str,
    split: sources.Split,
    names: list[str],
    min_seconds: float,
    repeats: int,
) -> dict[str, dict[str, float]]:
  """{row: measure()'s result plus time and FLOPs relative to SGD}; rows
  the model cannot run (SAM-ON without normalization layers) are left
  out."""
  make_config, _ = MODELS[model]
  results = {}
  for name in ['sgd', *[n for n in names if n != 'sgd']]:
    config = make_config('sgd')
    config.update(methods()[name])
    if config.sam_variant == 'sam_on' and not models.get(
        config.model
    ).normalized(config):
      continue
    results[name] = throughput.measure(config, split, min_seconds, repeats)
  sgd = results['sgd']
  for r in results.values():
    r['time_vs_sgd'] = sgd['examples_per_sec'] / r['examples_per_sec']
    r['flops_vs_sgd'] = r['flops_per_step'] / sgd['flops_per_step']
  return results


def main(argv):
  del argv
  FLAGS.set_default('output', 'variant_cost.json')
  names = FLAGS.methods or list(methods())
  results = {'devices': [str(d) for d in jax.devices()]}
  for model in FLAGS.models:
    make_config, shape = MODELS[model]
    split = (
        sources.load_split(make_config('sgd'), train=True)
        if shape is None
        else throughput.random_images(10_000, shape)
    )
    results[model] = cost_table(
        model, split, names, FLAGS.min_seconds, FLAGS.repeats
    )
    print(f'{model}: examples/s, time and executed FLOPs per step vs SGD')
    for name, r in results[model].items():
      print(
          f'  {name:14s} {r["examples_per_sec"]:9,.0f}'
          f'  {r["time_vs_sgd"]:5.2f}x  {r["flops_vs_sgd"]:5.2f}x'
      )
  with open(FLAGS.output, 'w') as f:
    json.dump(results, f, indent=2)
  print(f'wrote {FLAGS.output}')


if __name__ == '__main__':
  app.run(main)
