r"""Trains a model with SGD or SAM: python main.py --workdir=DIR --config=FILE.

Any config key can be overridden on the command line, e.g.
  python main.py --workdir=/tmp/mlp_sam --config=configs/fashion_mnist_mlp.py \
      --config.optimizer=sam --config.num_neurons='(1200,400)'

Running again with the same workdir resumes from its newest checkpoint.
"""

import logging as python_logging
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags
import tensorflow as tf

import input_pipeline
import train
import validate

FLAGS = flags.FLAGS

flags.DEFINE_string('workdir', None, 'Directory for checkpoints, TensorBoard '
                    'logs, config.json and summary.json. Never emptied; an '
                    'existing run in it is resumed.')
config_flags.DEFINE_config_file(
    'config', None, 'Training configuration file (see configs/default.py).',
    lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])


class _WarningsOnly(python_logging.Filter):
  """Drops the INFO chatter of a library (Orbax logs every save at INFO)."""

  def __init__(self, package: str):
    super().__init__()
    self._path = f'/{package}/'

  def filter(self, record: python_logging.LogRecord) -> bool:
    return (record.levelno >= python_logging.WARNING or
            self._path not in record.pathname)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  logging.get_absl_handler().addFilter(_WarningsOnly('orbax'))
  # TensorFlow only reads data; keep it off the accelerators JAX uses.
  tf.config.set_visible_devices([], 'GPU')

  logging.info('JAX process %d of %d; local devices: %s; all devices: %d',
               jax.process_index(), jax.process_count(), jax.local_devices(),
               jax.device_count())
  logging.info('Config:\n%s', FLAGS.config)
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except (validate.ConfigError, input_pipeline.DatasetUnavailableError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  jax.config.config_with_absl()
  app.run(main)
