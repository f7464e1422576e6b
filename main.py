r"""Trains a model with SGD or SAM: python main.py --workdir=DIR --config=FILE.

Any config key can be overridden on the command line, e.g.
  python main.py --workdir=/tmp/mlp_sam --config=configs/fashion_mnist_mlp.py \
      --config.optimizer=sam --config.num_neurons='(1200,400)'

Running again with the same workdir resumes from its newest checkpoint.
Exit codes (runs/outcomes.py): 0 finished (or finished before), 1 error (one
line on stderr), 3 diverged, 75 stopped by SIGTERM, SIGINT, SIGUSR1 or
SIGUSR2 with a checkpoint (the same command resumes).
"""

import logging as python_logging
import sys

from absl import app
from absl import flags
from absl import logging
from etils import epath
import jax
from ml_collections import config_flags

from analysis import training
from configuration import cli
from configuration import config_util
from divergence import Diverged
from input_pipeline import tfds_data
import rl_train
from runs import outcomes
from runs import rundir
from runtime import compilation_cache
from runtime import distributed
from runtime import xla_cpu
import train

FLAGS = flags.FLAGS

flags.DEFINE_string(
    'workdir',
    None,
    'Directory for checkpoints, TensorBoard '
    'logs, config.json and summary.json, relative to the '
    'current directory or absolute. Never emptied; an '
    'existing run in it is resumed.',
)
config_flags.DEFINE_config_file(
    'config',
    None,
    'Training configuration file (see configs/default.py).',
    lock_config=True,
)
flags.mark_flags_as_required(['config', 'workdir'])
distributed.define_flags()


class _WarningsOnly(python_logging.Filter):
  """Drops the INFO chatter of a library's package or module (Orbax logs
  every save at INFO)."""

  def __init__(self, path: str):
    super().__init__()
    self._path = f'/{path}'

  def filter(self, record: python_logging.LogRecord) -> bool:
    return (
        record.levelno >= python_logging.WARNING
        or self._path not in record.pathname
    )


def _final_line(summary: dict, workdir: str) -> str:
  """The console's last line: the result and where to find it."""
  replicas = [summary]
  if 'replica_summaries' in summary:  # Replicas side by side: their mean.
    replicas = [
        r
        for path in summary['replica_summaries']
        if (r := rundir.read_json(epath.Path(workdir) / path))
    ]
  metric = next(
      m
      for m in replicas[0]['metrics']
      if m['name'] == replicas[0]['primary_metric']
  )
  key = metric['name']

  def mean(entry: str) -> str:
    value = sum(r[f'{entry}_test_{key}'] for r in replicas) / len(replicas)
    return f'{100 * value:.2f}%' if metric['percent'] else f'{value:.4g}'

  result = (
      f'done: final test {key.replace("_", " ")} {mean("final")} (best '
      f'{mean("best")}'
  )
  if len(replicas) > 1:
    return (
        f'{result}), mean of {len(replicas)} replicas; {workdir}/summary.json'
    )
  return f'{result} at epoch {summary["best_epoch"]}); {workdir}/summary.json'


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  logging.get_absl_handler().addFilter(_WarningsOnly('orbax'))
  # JAX's search for accelerators logs each one it does not find (a TPU
  # library on every CPU or GPU machine); the devices found are logged once
  # the run is accepted (run_log.log_start).
  logging.get_absl_handler().addFilter(_WarningsOnly('jax/_src/xla_bridge'))

  config = FLAGS.config
  # Before anything starts JAX's CPU backend, which sizes its pool once.
  xla_cpu.use_threads(config.cpu_threads)
  try:
    distributed.initialize()
    workdir = cli.absolute_path(FLAGS.workdir, '--workdir')
    with config.unlocked():
      for key in (
          'init_from',
          'data_dir',
          'manual_dir',
          'compilation_cache_dir',
      ):
        if config[key] and config[key] != compilation_cache.OFF:
          config[key] = cli.absolute_path(config[key], f'config.{key}')
  except config_util.ConfigError as e:
    cli.fail(str(e))
  compilation_cache.enable(config.compilation_cache_dir)
  stop = cli.StopRequest()
  try:
    if config.environment:  # An agent, trained with PPO.
      summary = rl_train.train_and_evaluate(config, workdir, stop.requested)
    else:
      summary = train.train_and_evaluate(
          config,
          workdir,
          stop.requested,
          training.training_evaluators(config),
      )
  except (config_util.ConfigError, tfds_data.DatasetUnavailableError) as e:
    cli.fail(str(e))
  except Diverged as e:
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(outcomes.EXIT_DIVERGED)
  except outcomes.Stopped as e:
    print(f'stopped: {e}', file=sys.stderr, flush=True)
    sys.exit(outcomes.EXIT_STOPPED)
  except OSError as e:  # A read-only or full disk, a missing permission.
    # Everything a run writes lies under its workdir. Orbax's background
    # writes fail alongside, and its threads would report it again (logs,
    # tracebacks, warnings) while Python shuts down: end at once.
    cli.fail(
        f'cannot write {e.filename or workdir}: {e.strerror or e}', now=True
    )
  print(_final_line(summary, workdir), file=sys.stderr, flush=True)


if __name__ == '__main__':
  jax.config.config_with_absl()
  app.run(main, flags_parser=cli.flags_parser(lambda argv: None))
