"""MNIST-1D (Greydanus, 2020): 4,000 training and 1,000 test signals of
length 40, 10 classes, generated on this machine by the `mnist1d` package
with its default (canonical) arguments."""

import functools
import importlib.metadata
import random

import ml_collections
import numpy as np

from input_pipeline.spec import Split
from runtime import disk_cache

# The generated datasets' per-user cache (disk_cache): MNIST-1D takes about
# 5 s to generate on a 2-core CPU, ten times the quickstart's training.
GENERATED_CACHE_VARIABLE = 'SAM_OVERPARAM_DATA_CACHE'


@functools.cache
def _mnist1d() -> dict[str, np.ndarray]:
  """MNIST-1D with the package's default (canonical) arguments, generated
  once per user and package version (the arguments are the version's
  defaults, and generation is seeded) and once per process."""
  return disk_cache.cached_arrays(
      disk_cache.directory(GENERATED_CACHE_VARIABLE, 'generated-data'),
      disk_cache.digest(
          {
              'dataset': 'mnist1d',
              'format': 1,
              'version': importlib.metadata.version('mnist1d'),
          }
      ),
      _generate_mnist1d,
  )


def _generate_mnist1d() -> dict[str, np.ndarray]:
  import mnist1d.data  # pylint: disable=g-import-not-at-top
  # make_dataset seeds NumPy's and Python's global generators; restore them
  # so that generating data has no side effects on the caller.
  np_state, py_state = np.random.get_state(), random.getstate()
  try:
    data = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
  finally:
    np.random.set_state(np_state)
    random.setstate(py_state)
  return {key: data[key] for key in ('x', 'y', 'x_test', 'y_test')}


def read(config: ml_collections.ConfigDict, split: str) -> Split:
  """The 'train' or 'test' split."""
  del config  # MNIST-1D has no keys.
  data = _mnist1d()
  suffix = '' if split == 'train' else '_test'
  return Split(
      data['x' + suffix].astype(np.float32), data['y' + suffix].astype(np.int32)
  )
