"""Shared test setup: the offline TFDS directory, small configs and mock
TFDS data."""

import contextlib
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


# The per-user caches, each set to a directory for the session unless the
# environment already names one: one compilation cache (main.py and
# analyze.py processes use it, see runtime/compilation_cache.py), so that
# tests that run the same small configs compile them once, and one for analysis
# subsets (analysis/subset_cache.py) and one for generated datasets
# (MNIST-1D, input_pipeline/sources.py). Nothing is written to ~/.cache.
_SESSION_CACHES = (
    'JAX_COMPILATION_CACHE_DIR',
    'SAM_OVERPARAM_SUBSET_CACHE',
    'SAM_OVERPARAM_DATA_CACHE',
)


def pytest_configure(config):
  config.session_caches = []
  for variable in _SESSION_CACHES:
    if variable not in os.environ:
      os.environ[variable] = tempfile.mkdtemp(prefix='cache-')
      config.session_caches.append(variable)


def pytest_unconfigure(config):
  for variable in getattr(config, 'session_caches', []):
    shutil.rmtree(os.environ.pop(variable), ignore_errors=True)


def pytest_addoption(parser):
  parser.addoption(
      '--runslow',
      action='store_true',
      help='also run the tests marked slow (CI does)',
  )


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


def run_python(
    args, devices: int = 1, timeout: int = 600, check=False, env=None
):
  """Runs `python args...` in the repo with `devices` virtual CPU devices
  (and the environment variables `env` besides this process's)."""
  env = dict(os.environ, **(env or {}))
  env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
  env['JAX_PLATFORMS'] = 'cpu'
  result = subprocess.run(
      [sys.executable, *args],
      cwd=REPO,
      env=env,
      capture_output=True,
      text=True,
      timeout=timeout,
  )
  if check and result.returncode != 0:
    raise AssertionError(f'{args} failed:\n{result.stderr[-5000:]}')
  return result


def assert_refused(result: subprocess.CompletedProcess, error: str) -> None:
  """A program that refused its input with the one line `error` (exit 1)."""
  assert result.returncode == 1, result.stderr[-3000:]
  assert result.stderr.strip().splitlines() == [error]


@pytest.fixture
def tfds_dir():
  path = pathlib.Path(os.environ['TFDS_DATA_DIR'])
  assert (path / 'fashion_mnist').exists(), (
      f'Fashion-MNIST is not in TFDS_DATA_DIR={path}; point it at '
      '../shared/tensorflow_datasets (see README.md, "Tests")'
  )
  return str(path)


@contextlib.contextmanager
def mock_tfds(**kwargs):
  """tfds.testing.mock_data(**kwargs), which stands in for TFDS's download
  too: the download servers count as reachable (tfds_data._unreachable_host,
  which would find them offline here, is not asked)."""
  # pylint: disable=g-import-not-at-top
  from unittest import mock

  import tensorflow_datasets as tfds

  from input_pipeline import tfds_data

  with tfds.testing.mock_data(**kwargs), mock.patch.object(
      tfds_data, '_unreachable_host', lambda builder: None
  ):
    yield
