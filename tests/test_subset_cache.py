"""The analysis subset cache: a cached subset is the one read from the
dataset, its key follows what chooses the examples, damaged files are read
again, and an analysis from the cache imports no TensorFlow."""

import pathlib
import re

import numpy as np
import pytest

from analysis import objective
from analysis import subset_cache
import analyze
from configs import default
from runtime import parallel
from tests.conftest import run_python
from tests.conftest import small_config
import train

ANALYSIS = {'num_examples': 256, 'batch_size': 128}


def fashion_config(tfds_dir, **keys):
  """Fashion-MNIST's first 2,000 training examples, a 256-example subset."""
  config = small_config(
      **{
          'dataset': 'fashion_mnist',
          'data_dir': tfds_dir,
          'num_train_examples': 2000,
          **keys,
      }
  )
  config.analysis.update(ANALYSIS)
  return config


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
  monkeypatch.setenv(subset_cache.ENVIRONMENT_VARIABLE, str(tmp_path))
  return tmp_path


def test_a_cached_subset_is_the_one_read_and_reads_nothing(
    tfds_dir, cache_dir, monkeypatch
):
  config = fashion_config(tfds_dir, label_noise=0.2, seed=3)
  mesh = parallel.create_mesh()
  read = objective._training_examples(config, 256)  # pylint: disable=protected-access
  first = objective.load_subset(config, mesh)
  assert len(list(cache_dir.glob('*.npz'))) == 1

  def unreadable(*args):
    raise AssertionError('the dataset was read again')

  monkeypatch.setattr(objective, '_training_examples', unreadable)
  cached = objective.load_subset(config, mesh)
  for subset in (first, cached):
    np.testing.assert_array_equal(
        np.asarray(subset['images']).reshape(read.images.shape), read.images
    )
    np.testing.assert_array_equal(
        np.asarray(subset['labels']).reshape(-1), read.labels
    )


def test_the_key_follows_what_chooses_the_examples(tfds_dir, tmp_path):
  base = fashion_config(tfds_dir)
  key = subset_cache.subset_key
  # The runs of a width or optimizer sweep share one subset ...
  assert key(
      fashion_config(tfds_dir, num_neurons=(64, 32), optimizer='sam', seed=5),
      256,
  ) == key(base, 256)
  # ... but not runs whose examples or labels differ.
  other_analysis_seed = fashion_config(tfds_dir)
  other_analysis_seed.analysis.seed = 1
  different = [
      fashion_config(tfds_dir, label_noise=0.2, seed=0),
      fashion_config(tfds_dir, label_noise=0.2, seed=1),
      fashion_config(tfds_dir, label_noise=0.2, label_noise_type='asymmetric'),
      fashion_config(tfds_dir, validation_fraction=0.1),
      fashion_config(tfds_dir, num_train_examples=1000),
      other_analysis_seed,
  ]
  keys = [key(base, 256), key(base, 128)] + [key(c, 256) for c in different]
  # The same dataset in another TFDS directory (a link to it here).
  other_dir = tmp_path / 'tfds'
  other_dir.mkdir()
  (other_dir / 'fashion_mnist').symlink_to(
      pathlib.Path(tfds_dir).resolve() / 'fashion_mnist'
  )
  keys.append(key(fashion_config(str(other_dir)), 256))
  assert len(set(keys)) == len(keys)


def test_a_damaged_file_is_read_again_and_off_writes_nothing(
    tfds_dir, cache_dir, monkeypatch
):
  config = fashion_config(tfds_dir)
  mesh = parallel.create_mesh()
  first = objective.load_subset(config, mesh)
  [path] = cache_dir.glob('*.npz')
  path.write_bytes(path.read_bytes()[:1000])  # A write cut short.
  again = objective.load_subset(config, mesh)
  np.testing.assert_array_equal(again['images'], first['images'])
  with np.load(path) as stored:  # Written whole again.
    assert stored['inputs'].shape == (256, 28, 28, 1)
  monkeypatch.setenv(subset_cache.ENVIRONMENT_VARIABLE, subset_cache.OFF)
  path.unlink()
  objective.load_subset(config, mesh)
  assert not list(cache_dir.iterdir())


def test_an_unwritable_cache_only_costs_time(tfds_dir, tmp_path, monkeypatch):
  # The cache's directory cannot be made (a file is in the way): the subset
  # is read from the dataset as without a cache, with a warning.
  blocker = tmp_path / 'file'
  blocker.write_text('')
  monkeypatch.setenv(subset_cache.ENVIRONMENT_VARIABLE, str(blocker / 'cache'))
  config = fashion_config(tfds_dir)
  subset = objective.load_subset(config, parallel.create_mesh())
  read = objective._training_examples(config, 256)  # pylint: disable=protected-access
  np.testing.assert_array_equal(
      np.asarray(subset['images']).reshape(read.images.shape), read.images
  )
  assert blocker.read_text() == ''


def test_an_analysis_from_the_cache_imports_no_tensorflow(
    tfds_dir, cache_dir, tmp_path
):
  # A first analysis of the dataset reads it through TFDS (TensorFlow); the
  # next ones, here a separate process, need neither TensorFlow (about
  # 2.5 s) nor matplotlib when they draw no figure.
  workdir = tmp_path / 'run'
  train.train_and_evaluate(fashion_config(tfds_dir, num_epochs=1), str(workdir))
  overrides = {
      **{f'analysis.{k}': v for k, v in ANALYSIS.items()},
      'analysis.parts': ('hessian',),
      'analysis.slq_probes': 0,
      'analysis.top_k': 1,
      'analysis.most_negative_eigenvalue': False,
  }
  flag_config = default.get_config()
  for name, value in overrides.items():
    flag_config.analysis[name.split('.')[1]] = value
  objective.load_subset(
      analyze.analysis_config(str(workdir), flag_config, overrides),
      parallel.create_mesh(),
  )
  result = run_python(
      [
          '-X',
          'importtime',
          'analyze.py',
          f'--workdir={workdir}',
          *(f'--config.{k}={v}' for k, v in overrides.items()),
      ],
      check=True,
  )
  imported = set(re.findall(r'\|\s+(\S+)$', result.stderr, re.MULTILINE))
  assert 'jax' in imported and 'analysis.measure' in imported
  assert not {'tensorflow', 'matplotlib', 'clu'} & imported
  assert (workdir / 'analysis' / 'analysis.json').exists()
