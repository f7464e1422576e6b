"""Data loading (real Fashion-MNIST, mocked TFDS datasets, MNIST-1D) and the
on-device batching, augmentation and evaluation padding."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from analysis import objective
from input_pipeline import label_noise
from input_pipeline import mnist_1d
from input_pipeline import on_device
from input_pipeline import sources
from input_pipeline import streaming
from input_pipeline import tfds_data
from runs import run_state
from runtime import parallel
from tests import conftest
from tests.conftest import small_config


def config_for(dataset, **keys):
  return small_config(dataset=dataset, **keys)


def test_fashion_mnist_loads_from_the_tfds_directory(tfds_dir):
  config = config_for('fashion_mnist', data_dir=tfds_dir, download=False)
  train = sources.load_split(config, train=True)
  test = sources.load_split(config, train=False)
  assert train.images.shape == (60_000, 28, 28, 1)
  assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
  assert len(test) == 10_000
  assert set(np.unique(train.labels)) == set(range(10))
  assert sources.example_shape(config) == (28, 28, 1)
  subset = sources.load_split(
      config_for('fashion_mnist', num_train_examples=500), train=True
  )
  np.testing.assert_array_equal(subset.labels, train.labels[:500])


def test_the_analysis_subset_decodes_only_its_examples_and_equals_them(
    tfds_dir,
):
  # The analysis reads images encoded and decodes the ones it measures:
  # they must be those of the decoded split, with the run's noisy labels.
  config = config_for(
      'fashion_mnist',
      data_dir=tfds_dir,
      num_train_examples=2000,
      validation_fraction=0.1,
      label_noise=0.3,
      seed=4,
  )
  config.analysis.seed = 7
  encoded = sources.load_split(config, train=True, decode=False)
  decoded = sources.load_split(config, train=True)
  assert encoded.images.dtype == object and len(encoded) == 1800
  np.testing.assert_array_equal(
      sources.decode_images(config, encoded.images[:50]), decoded.images[:50]
  )
  subset = objective._training_examples(config, 300)  # pylint: disable=protected-access
  noisy = label_noise.add_label_noise(
      decoded, 10, 0.3, 'symmetric', run_state.seed_keys(4)['label_noise']
  )
  chosen = np.sort(np.random.default_rng(7).choice(1800, 300, replace=False))
  np.testing.assert_array_equal(subset.images, decoded.images[chosen])
  np.testing.assert_array_equal(subset.labels, noisy.labels[chosen])
  assert subset.images.dtype == np.uint8


def test_tfds_data_dir_defaults_to_tfds_data_dir_variable(tfds_dir):
  # data_dir=None: TFDS's default, which honours TFDS_DATA_DIR (conftest).
  config = config_for('fashion_mnist', data_dir=None, download=False)
  assert len(sources.load_split(config, train=False)) == 10_000


def test_missing_dataset_names_the_data_directory(tmp_path):
  config = config_for('cifar10', data_dir=str(tmp_path), download=False)
  with pytest.raises(
      tfds_data.DatasetUnavailableError,
      match=f"'cifar10' is not in config.data_dir='{tmp_path}'"
      '.*TFDS_DATA_DIR',
  ):
    sources.load_split(config, train=True)


def test_offline_a_download_fails_at_once_and_leaves_nothing(tmp_path):
  config = config_for('cifar10', data_dir=str(tmp_path / 'data'), download=True)
  builder = tfds.builder('cifar10', data_dir=config.data_dir)
  if tfds_data._unreachable_host(builder) is None:  # pylint: disable=protected-access
    pytest.skip('this machine reaches the download server')
  start = time.monotonic()
  with pytest.raises(
      tfds_data.DatasetUnavailableError,
      match="'cifar10' is not in config.data_dir=.* and is not "
      r'available offline \(www.cs.toronto.edu cannot be '
      r'reached\)',
  ):
    sources.load_split(config, train=True)
  assert time.monotonic() - start < 2 * tfds_data.CONNECT_TIMEOUT + 10
  assert not (tmp_path / 'data').exists()


def test_a_failed_download_removes_only_what_it_wrote(tmp_path, monkeypatch):
  data = tmp_path / 'data'
  (data / 'cifar10' / '1.0.0').mkdir(parents=True)  # The user's, kept.
  (data / 'notes.txt').write_text('mine')

  def interrupted(builder, **kwargs):
    # What TFDS leaves when a download breaks off.
    del kwargs
    (data / 'downloads' / 'extracted').mkdir(parents=True)
    (data / 'downloads' / 'cifar-10.tar.gz.tmp').write_bytes(b'\0' * 10)
    (data / 'cifar10' / '3.0.2.incomplete.ABC').mkdir()
    raise ConnectionError('Connection reset by peer')

  monkeypatch.setattr(tfds_data, '_unreachable_host', lambda builder: None)
  monkeypatch.setattr(
      tfds.core.DatasetBuilder, 'download_and_prepare', interrupted
  )
  with pytest.raises(
      tfds_data.DatasetUnavailableError,
      match=r'could not be downloaded \(ConnectionError: '
      r'Connection reset by peer\)',
  ):
    sources.load_split(
        config_for('cifar10', data_dir=str(data), download=True), train=True
    )
  assert sorted(str(p.relative_to(data)) for p in data.rglob('*')) == [
      'cifar10',
      'cifar10/1.0.0',
      'notes.txt',
  ]


@pytest.mark.parametrize(
    'dataset,shape,classes',
    [
        ('mnist', (28, 28, 1), 10),
        ('cifar10', (32, 32, 3), 10),
        ('cifar100', (32, 32, 3), 100),
    ],
)
def test_tfds_image_datasets_load_through_the_same_path(
    dataset, shape, classes
):
  with conftest.mock_tfds(num_examples=37):
    config = config_for(dataset)
    split = sources.load_split(config, train=True)
  assert split.images.shape == (37,) + shape
  assert split.images.dtype == np.uint8
  assert sources.get_spec(dataset).num_classes == classes


def test_mnist1d_is_generated_once_per_user_without_side_effects(
    tmp_path, monkeypatch
):
  monkeypatch.setenv(mnist_1d.GENERATED_CACHE_VARIABLE, str(tmp_path))
  mnist_1d._mnist1d.cache_clear()  # pylint: disable=protected-access
  np.random.seed(123)
  before = np.random.get_state()[1].copy()
  train = sources.load_split(config_for('mnist1d'), train=True)
  test = sources.load_split(config_for('mnist1d'), train=False)
  np.testing.assert_array_equal(np.random.get_state()[1], before)
  assert train.images.shape == (4000, 40) and len(test) == 1000
  assert train.images.dtype == np.float32
  # The package's own canonical dataset.
  import mnist1d.data  # pylint: disable=g-import-not-at-top

  canonical = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
  np.testing.assert_array_equal(train.images, canonical['x'].astype(np.float32))
  np.testing.assert_array_equal(test.labels, canonical['y_test'])

  # A later process reads it from the cache, generating nothing ...
  [stored] = tmp_path.glob('*.npz')

  def generate_again():
    raise AssertionError('MNIST-1D was generated again')

  with monkeypatch.context() as patch:
    patch.setattr(mnist_1d, '_generate_mnist1d', generate_again)
    mnist_1d._mnist1d.cache_clear()  # pylint: disable=protected-access
    again = sources.load_split(config_for('mnist1d'), train=True)
  np.testing.assert_array_equal(again.images, train.images)
  np.testing.assert_array_equal(again.labels, train.labels)
  # ... unless the file is damaged: then it is generated and written again.
  stored.write_bytes(stored.read_bytes()[:1000])
  mnist_1d._mnist1d.cache_clear()  # pylint: disable=protected-access
  again = sources.load_split(config_for('mnist1d'), train=False)
  np.testing.assert_array_equal(again.images, test.images)
  with np.load(stored) as arrays:
    assert arrays['x'].shape == (4000, 40)
  mnist_1d._mnist1d.cache_clear()  # pylint: disable=protected-access


def test_imagenet_streams_uint8_crops_with_padded_evaluation():
  config = config_for(
      'imagenet2012',
      image_size=32,
      augment=True,
      batch_size=4,
      eval_batch_size=6,
  )
  with conftest.mock_tfds(num_examples=10):
    batches, count = streaming.imagenet_batches(config, True, 0, 4)
    train = list(batches)
    again = list(streaming.imagenet_batches(config, True, 0, 4)[0])
    evaluation, eval_count = streaming.imagenet_batches(config, False, 0, 6)
    evaluation = list(evaluation)
  assert count == len(train) == 2  # 10 // 4, remainder dropped.
  assert train[0]['image'].shape == (4, 32, 32, 3)
  assert train[0]['image'].dtype == np.uint8
  # The same epoch streams the same crops (stateless, seeded per example).
  np.testing.assert_array_equal(train[1]['image'], again[1]['image'])
  assert eval_count == len(evaluation) == 2
  assert [b['valid'].sum() for b in evaluation] == [6, 4]
  assert evaluation[1]['image'].shape == (6, 32, 32, 3)


def test_random_crop_flip_takes_a_window_of_the_padded_image():
  rng = np.random.default_rng(0)
  images = rng.integers(1, 256, (64, 8, 8, 3)).astype(np.uint8)
  keys = jax.random.split(jax.random.key(0), 64)
  out = np.asarray(
      on_device.random_crop_flip(jnp.asarray(images), keys, padding=2)
  )
  padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
  flips, offsets = 0, set()
  for image, crop in zip(padded, out):
    matches = [
        (t, l, f)
        for t in range(5)
        for l in range(5)
        for f in (0, 1)
        if np.array_equal(
            crop,
            (
                image[t : t + 8, l : l + 8, :][:, ::-1]
                if f
                else image[t : t + 8, l : l + 8, :]
            ),
        )
    ]
    assert matches, 'crop is not a (flipped) window of the padded image'
    flips += matches[0][2]
    offsets.add(matches[0][:2])
  assert 16 < flips < 48 and len(offsets) > 10  # Both vary across examples.


def test_normalize_uses_per_channel_statistics():
  spec = sources.get_spec('cifar10')
  images = jnp.full((1, 2, 2, 3), 255, jnp.uint8)
  expected = (1 - np.array(spec.mean)) / np.array(spec.std)
  np.testing.assert_allclose(
      sources.normalize(images, spec)[0, 0, 0], expected, rtol=1e-6
  )


def test_an_epoch_visits_every_example_once_in_a_new_order():
  config = config_for('mnist1d', batch_size=100)
  split = sources.Split(
      np.arange(1000, dtype=np.float32)[:, None].repeat(3, 1),
      np.arange(1000, dtype=np.int32),
  )
  mesh = parallel.create_mesh()
  data = on_device.OnDeviceTrainData(
      split,
      sources.get_spec('mnist1d'),
      config,
      mesh,
      [{'data': jax.random.key(0), 'augment': jax.random.key(1)}],
  )

  def labels(inputs, step):
    inputs = parallel.select_replica(inputs, data.replica_axes, 0)
    return data.device_batch(inputs, 0, step)['labels']

  def epoch_labels(epoch):
    inputs, _ = next(data.epoch_chunks(epoch, 1))
    fn = jax.jit(
        jax.shard_map(
            labels,
            mesh=mesh,
            in_specs=(data.input_specs, jax.P()),
            out_specs=jax.P('batch'),
        )
    )
    return np.concatenate(
        [
            np.asarray(fn(inputs, epoch * data.steps_per_epoch + s))
            for s in range(data.steps_per_epoch)
        ]
    )

  first, second = epoch_labels(0), epoch_labels(1)
  assert sorted(first) == list(range(1000)) == sorted(second)
  assert not np.array_equal(first, second)
  np.testing.assert_array_equal(first, epoch_labels(0))


def test_evaluation_covers_every_example_exactly_once():
  config = config_for('mnist1d', eval_batch_size=64)
  split = sources.Split(
      np.zeros((1000, 3), np.float32), np.arange(1000, dtype=np.int32)
  )
  data = on_device.OnDeviceEvalData(split, config, parallel.create_mesh())
  inputs = next(data.groups())
  valid = np.asarray(inputs['valid']).ravel()
  labels = np.asarray(inputs['labels']).ravel()
  assert len(valid) == 1024 and valid.sum() == 1000
  np.testing.assert_array_equal(labels[valid], np.arange(1000))
