"""Shared test setup: the offline TFDS directory and small configs."""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_TFDS = REPO.parent / 'shared' / 'tensorflow_datasets'

# Tests read Fashion-MNIST from the prepared TFDS directory beside the repo
# (CI sets TFDS_DATA_DIR to it); nothing is ever downloaded.
os.environ.setdefault('TFDS_DATA_DIR', str(SHARED_TFDS))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def pytest_configure(config):
  """One compilation cache for the whole session (main.py and analyze.py
  processes use it, see compilation_cache.py): tests that run the same
  small configs compile them once, and nothing is written to the user's
  ~/.cache."""
  if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
    config.session_jax_cache = tempfile.mkdtemp(prefix='jax-cache-')
    os.environ['JAX_COMPILATION_CACHE_DIR'] = config.session_jax_cache


def pytest_unconfigure(config):
  if getattr(config, 'session_jax_cache', None):
    shutil.rmtree(config.session_jax_cache, ignore_errors=True)
    del os.environ['JAX_COMPILATION_CACHE_DIR']


def pytest_addoption(parser):
  parser.addoption('--runslow', action='store_true',
                   help='also run the tests marked slow (CI does)')


def pytest_collection_modifyitems(config, items):
  """Skips the slow tests unless --runslow: the default run stays near ten
  minutes on a 2-core CPU, and CI runs everything."""
  if config.getoption('--runslow'):
    return
  skip = pytest.mark.skip(reason='slow: run with --runslow (CI does)')
  for item in items:
    if 'slow' in item.keywords:
      item.add_marker(skip)


def small_config(**overrides):
  """The quickstart (MNIST-1D MLP) shrunk to a few seconds of training."""
  from configs import quickstart  # pylint: disable=g-import-not-at-top
  config = quickstart.get_config()
  config.num_neurons = (32, 16)
  config.num_epochs = 3
  config.batch_size = 100
  config.steps_per_dispatch = 7
  config.lr_boundaries = (0.5,)
  for key, value in overrides.items():
    config[key] = value
  return config


def run_python(args, devices: int = 1, timeout: int = 600, check=False):
  """Runs `python args...` in the repo with `devices` virtual CPU devices."""
  env = dict(os.environ)
  env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
  env['JAX_PLATFORMS'] = 'cpu'
  result = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
  if check and result.returncode != 0:
    raise AssertionError(f'{args} failed:\n{result.stderr[-5000:]}')
  return result


@pytest.fixture
def tfds_dir():
  path = pathlib.Path(os.environ['TFDS_DATA_DIR'])
  assert (path / 'fashion_mnist').exists(), (
      f'Fashion-MNIST is not in TFDS_DATA_DIR={path}; point it at '
      '../shared/tensorflow_datasets (see README, "Tests")')
  return str(path)
