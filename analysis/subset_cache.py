"""The analysis subsets, kept on disk for the next process that needs one.

A subset is a couple of thousand examples, but choosing them means reading
the whole training split through TFDS: TensorFlow's import and a pass over
the split (about 5 s for Fashion-MNIST on a 2-core CPU). analyze.py run
again on a run, on another run of the same data (a sweep's runs share their
subset unless their label noise differs) or training that measures itself
every few epochs loads it from here instead, in milliseconds.

Where it lives, first match wins:
  * the environment's SAM_OVERPARAM_SUBSET_CACHE: a directory, or 'off';
  * analysis-subsets/ beside the compilation cache (disk_cache.ROOT).

A file is named by a digest of everything that chooses the examples and
their labels (`subset_key`), so a changed setting reads the dataset again.
A damaged file is read again from the dataset, and files are written by a
rename, whole or not at all. Deleting the directory is always safe.
"""

from collections.abc import Callable

import jax
import ml_collections

from input_pipeline import sources
from input_pipeline import tfds_data
from runtime import disk_cache

ENVIRONMENT_VARIABLE = 'SAM_OVERPARAM_SUBSET_CACHE'
OFF = disk_cache.OFF
# Bump when the way examples are chosen changes: older files then stop
# matching.
FORMAT = 1
# The run's config keys that decide which examples form the subset, and
# with which labels and input encoding.
RUN_KEYS = (
    'dataset',
    'num_train_examples',
    'validation_fraction',
    'label_noise',
    'label_noise_type',
    'vocab_size',
    'max_length',
    'max_nodes',
    'max_edges',
)


def directory() -> str | None:
  """The cache directory, or None when it is off."""
  return disk_cache.directory(ENVIRONMENT_VARIABLE, 'analysis-subsets')


def subset_key(config: ml_collections.ConfigDict, count: int) -> str:
  """A digest of what determines this process's `count` examples: RUN_KEYS,
  the seed if label noise draws from it, the analysis seed, the process's
  place among the processes, and the prepared dataset's directory (as
  config.data_dir or TFDS_DATA_DIR resolve it, with its version)."""
  fields = {key: config.get(key) for key in RUN_KEYS}
  fields.update(
      format=FORMAT,
      count=count,
      analysis_seed=config.analysis.seed,
      label_noise_seed=config.seed if config.get('label_noise') else None,
      process=(jax.process_index(), jax.process_count()),
      dataset_dir=str(tfds_data.prepared_builder(config).data_dir),
  )
  return disk_cache.digest(fields)


def cached(
    config: ml_collections.ConfigDict,
    count: int,
    load: Callable[[], sources.Split],
) -> sources.Split:
  """The subset `load()` returns, from the cache if it holds it (else loaded
  and stored). Only in-memory TFDS datasets are cached: MNIST-1D is
  generated once per user (sources), the regression sets in no time, and
  ImageNet is streamed."""
  spec = sources.dataset_spec(config)
  if not spec.tfds or not spec.in_memory:
    return load()

  def arrays():
    split = load()
    return {'inputs': split.images, 'labels': split.labels}

  stored = disk_cache.cached_arrays(
      directory(), subset_key(config, count), arrays
  )
  return sources.Split(stored['inputs'], stored['labels'])
