"""Datasets: what each is and how to read it into host memory.

TFDS image classification data (MNIST, Fashion-MNIST, CIFAR-10/100), TFDS
text classification data (IMDB reviews, tokenized by `text`), molecular
graphs (ogbg-molpcba, packed into fixed-size records by `graphs`),
locally generated MNIST-1D and the regression sets generated in-process by
`synthetic` are read once into host arrays (`load_split`); `normalize` is
the per-dataset input normalization every feeder applies on device.
Reading through TFDS (preparing, offline errors, process splits) is
`tfds_data`'s, label noise `label_noise`'s. With several processes, each
reads its own share of every split (`jax.process_index()`), so no process
holds another's examples.
"""

import dataclasses
import functools
import hashlib
import importlib.metadata
import random

from etils import epy
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from input_pipeline import graphs
from input_pipeline import synthetic
from input_pipeline import text
from input_pipeline import tfds_data
from runtime import disk_cache
import tasks

# TFDS (0.3 s to import) only for the datasets it reads: a process training
# on MNIST-1D never imports it, nor TensorFlow.
with epy.lazy_imports():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What the pipeline needs to know about a dataset.

  `inputs` is one of INPUT_KINDS: 'images' are stored as uint8 and
  normalized on device to (x / 255 - mean) / std per channel; 'features'
  (MNIST-1D) are stored as float32, already standardized; 'tokens' are texts
  stored as int32 word ids (see `text`), 0 for padding; 'graphs' are int16
  records (see `graphs`). `task` says what is predicted (see `tasks`);
  `num_classes` is the network's number of outputs (classes, binary tasks
  for a multi-label set, or targets for a regression). `keys` are the
  config keys this dataset alone reads (a generated set's sizes).
  """

  num_classes: int
  test_split: str = 'test'
  mean: tuple[float, ...] = (0.0,)
  std: tuple[float, ...] = (1.0,)
  inputs: str = 'images'
  in_memory: bool = True
  # The side of its square images (None: config.image_size, ImageNet's crop).
  image_size: int | None = None
  task: tasks.Task = tasks.TASKS['classification']
  keys: tuple[str, ...] = ()
  # Read through TFDS (False: generated on this machine).
  tfds: bool = True

  @property
  def is_image(self) -> bool:
    return self.inputs == 'images'


INPUT_KINDS = ('images', 'features', 'tokens', 'graphs')
# The config keys the data reads: every dataset's, and those of one kind of
# inputs only (HParams show a run the keys it reads).
CONFIG_KEYS = (
    'dataset',
    'data_dir',
    'manual_dir',
    'download',
    'num_train_examples',
    'epoch_passes',
    'validation_fraction',
    'label_noise',
    'label_noise_type',
    'augment',
    'image_size',
)
INPUT_KEYS = {
    'tokens': ('vocab_size', 'max_length'),
    'graphs': ('max_nodes', 'max_edges'),
}

DATASETS = {
    # MNIST-style inputs are only scaled to [0, 1], as in Shin et al.'s code.
    'mnist': DatasetSpec(num_classes=10, image_size=28),
    'fashion_mnist': DatasetSpec(num_classes=10, image_size=28),
    'cifar10': DatasetSpec(
        num_classes=10,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        image_size=32,
    ),
    'cifar100': DatasetSpec(
        num_classes=100,
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
        image_size=32,
    ),
    'imagenet2012': DatasetSpec(
        num_classes=1000,
        test_split='validation',
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        in_memory=False,
    ),
    # Greydanus (2020): 4,000 train / 1,000 test signals of length 40,
    # generated locally by the `mnist1d` package.
    'mnist1d': DatasetSpec(num_classes=10, inputs='features', tfds=False),
    # Maas et al. (2011): 25,000 training and 25,000 test movie reviews,
    # positive or negative.
    'imdb_reviews': DatasetSpec(num_classes=2, inputs='tokens'),
    # Hu et al. (2020), OGB: 437,929 molecules (350,343 training, 43,793
    # test), 128 bioassays each, most of them unlabeled for a given molecule.
    'ogbg_molpcba': DatasetSpec(
        num_classes=128, inputs='graphs', task=tasks.TASKS['multilabel']
    ),
    # Regression sets generated in-process (synthetic.py): A&F's sparse
    # regression for diagonal networks, Maennel et al.'s 12 points for the
    # one-hidden-layer ReLU network, a random ReLU teacher.
    **{
        name: DatasetSpec(
            num_classes=1,
            inputs='features',
            task=tasks.TASKS['regression'],
            keys=keys,
            tfds=False,
        )
        for name, keys in synthetic.KEYS.items()
    },
}


def dataset_keys() -> set[str]:
  """The config keys some dataset alone reads (DatasetSpec.keys)."""
  return set().union(*(spec.keys for spec in DATASETS.values()))


def get_spec(name: str) -> DatasetSpec:
  if name not in DATASETS:
    raise ValueError(
        f'unknown dataset {name!r}; known datasets: '
        f'{", ".join(sorted(DATASETS))}'
    )
  return DATASETS[name]


@dataclasses.dataclass
class Split:
  """This process's share of a split, on the host."""

  # The inputs: uint8 [n, h, w, c] images, float32 [n, d] features, int32
  # [n, max_length] token ids (raw texts only inside this module) or int16
  # [n, record] graphs.
  images: np.ndarray
  # int32 [n]; int8 [n, tasks] for a multi-label set; float32 [n] targets
  # for a regression.
  labels: np.ndarray
  # Which labels label noise replaced (see add_label_noise); None if none.
  flipped: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.labels)


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


def _process_shard(array: np.ndarray) -> np.ndarray:
  """This process's contiguous share of a test split, split as
  tfds.split_for_jax_process (the remainder kept)."""
  return np.array_split(array, jax.process_count())[jax.process_index()]


# The examples held out for validation are drawn with this seed, not the
# run's: every run of a dataset (each seed, SGD and SAM) holds out the same.
VALIDATION_SEED = 0


def _held_out(count: int, fraction: float) -> np.ndarray:
  """Whether each of `count` training examples is held out for validation
  (round(fraction * count) of them)."""
  chosen = np.random.default_rng(VALIDATION_SEED).permutation(count)[
      : round(fraction * count)
  ]
  held_out = np.zeros(count, bool)
  held_out[chosen] = True
  return held_out


def load_split(
    config: ml_collections.ConfigDict, train: bool, decode: bool = True
) -> Split:
  """Loads the training examples, or this process's share of the test
  split, into memory.

  Every process holds all training examples (the in-memory datasets are
  small) and takes its slice of each global batch, so that which examples
  form a batch, and the label noise, do not depend on the number of
  processes. The training examples are the training split without the
  config.validation_fraction held out for validation. With decode=False,
  TFDS images stay encoded (bytes) until `decode_images`: for callers that
  use a few of them (the analysis subset).
  """
  if not train:
    return _tokenized(config, _read(config, train=False, decode=decode))
  return _tokenized(
      config, _kept(config, _read(config, train=True, decode=decode))
  )


def decode_images(
    config: ml_collections.ConfigDict, images: np.ndarray
) -> np.ndarray:
  """uint8 images of the encoded ones `load_split(decode=False)` returned
  (other inputs as they are)."""
  if images.dtype != object or not get_spec(config.dataset).is_image:
    return images
  feature = tfds_data.prepared_builder(config).info.features['image']
  return np.stack([feature.decode_example_np(x) for x in images]).astype(
      np.uint8
  )


def load_validation_split(config: ml_collections.ConfigDict) -> Split:
  """This process's share of the training examples held out for validation
  (config.validation_fraction of the training split, with their labels)."""
  split = _read(config, train=True)
  held_out = _held_out(len(split), config.validation_fraction)
  return _tokenized(
      config,
      Split(
          _process_shard(split.images[held_out]),
          _process_shard(split.labels[held_out]),
      ),
  )


def _kept(config: ml_collections.ConfigDict, split: Split) -> Split:
  """The training examples not held out for validation."""
  kept = ~_held_out(len(split), config.validation_fraction)
  return Split(split.images[kept], split.labels[kept])


# Vocabularies by (digest of the training texts, vocab_size): the training,
# test and validation splits of a run share one without building it thrice.
_vocabularies: dict[tuple[str, int], dict[str, int]] = {}


def vocabulary(config: ml_collections.ConfigDict) -> dict[str, int]:
  """The word ids of a text dataset, built from the examples a run trains
  on (see text.build_vocabulary)."""
  texts = _kept(config, _read(config, train=True)).images
  digest = hashlib.sha256(b'\0'.join(texts)).hexdigest()
  key = (digest, config.vocab_size)
  if key not in _vocabularies:
    _vocabularies[key] = text.build_vocabulary(texts, config.vocab_size)
  return _vocabularies[key]


def _tokenized(config: ml_collections.ConfigDict, split: Split) -> Split:
  """Texts as config.max_length token ids; other inputs unchanged."""
  if get_spec(config.dataset).inputs != 'tokens':
    return split
  return Split(
      text.encode(split.images, vocabulary(config), config.max_length),
      split.labels,
  )


def _read(
    config: ml_collections.ConfigDict, train: bool, decode: bool = True
) -> Split:
  """The whole training split, or this process's share of the test split
  (texts as raw bytes; TFDS images as encoded bytes unless `decode`)."""
  spec = get_spec(config.dataset)
  if config.dataset in synthetic.KEYS:
    data = synthetic.generate(config)
    if train:
      return Split(data['x'], data['y'])
    return Split(_process_shard(data['x_test']), _process_shard(data['y_test']))
  if config.dataset == 'mnist1d':
    data = _mnist1d()
    images, labels = (
        (data['x'], data['y']) if train else (data['x_test'], data['y_test'])
    )
    if train and config.num_train_examples:
      images = images[: config.num_train_examples]
      labels = labels[: config.num_train_examples]
    if not train:
      images, labels = _process_shard(images), _process_shard(labels)
    return Split(images.astype(np.float32), labels.astype(np.int32))
  tfds_data.tensorflow_off_accelerators()
  builder = tfds_data.prepared_builder(config)
  split = (
      tfds_data.train_split_name(config)
      if train
      else tfds_data.process_split(spec.test_split, train=False)
  )
  if spec.inputs == 'graphs':
    return _read_graphs(
        config, builder.as_dataset(split=split, shuffle_files=False)
    )
  encoded = not decode and spec.is_image
  ds = builder.as_dataset(
      split=split,
      as_supervised=True,
      shuffle_files=False,
      decoders={'image': tfds.decode.SkipDecoding()} if encoded else None,
  )
  inputs, labels = zip(*tfds.as_numpy(ds.batch(10_000)))
  inputs = np.concatenate(inputs)
  return Split(
      inputs if spec.inputs == 'tokens' or encoded else inputs.astype(np.uint8),
      np.concatenate(labels).astype(np.int32),
  )


def _read_graphs(config: ml_collections.ConfigDict, ds) -> Split:
  """OGB graph-property examples as graph records and int8 labels (NaN, an
  unlabeled task, becomes tasks.MISSING)."""
  examples = list(tfds.as_numpy(ds))
  records = graphs.pack(
      ((e['node_feat'], e['edge_index']) for e in examples),
      config.max_nodes,
      config.max_edges,
  )
  labels = (
      np.stack([e['labels'] for e in examples])
      if examples
      else (np.zeros((0, get_spec(config.dataset).num_classes), np.float32))
  )
  return Split(
      records, np.where(np.isnan(labels), tasks.MISSING, labels).astype(np.int8)
  )


def example_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """Shape of one network input, from metadata (no data is read)."""
  if config.dataset == 'mnist1d':
    return (_mnist1d()['x'].shape[1],)
  if config.dataset in synthetic.KEYS:
    return synthetic.generate(config)['x'].shape[1:]
  if config.dataset == 'imagenet2012':
    return (config.image_size, config.image_size, 3)
  if get_spec(config.dataset).inputs == 'tokens':
    return (config.max_length,)
  if get_spec(config.dataset).inputs == 'graphs':
    return (graphs.record_size(config.max_nodes, config.max_edges),)
  return tuple(tfds_data.prepared_builder(config).info.features['image'].shape)


def normalize(images: jax.Array, spec: DatasetSpec) -> jax.Array:
  """uint8 images -> float32 (x / 255 - mean) / std; features, token ids and
  graph records pass through."""
  if spec.inputs == 'features':
    return images.astype(jnp.float32)
  if spec.inputs in ('tokens', 'graphs'):
    return images.astype(jnp.int32)
  mean = jnp.asarray(spec.mean, jnp.float32)
  std = jnp.asarray(spec.std, jnp.float32)
  return (images.astype(jnp.float32) / 255.0 - mean) / std
