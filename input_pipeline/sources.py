"""Datasets: what each is and how to read it into host memory.

TFDS image classification data (MNIST, Fashion-MNIST, CIFAR-10/100), TFDS
text classification data (IMDB reviews, SST-2; tokenized by `text`),
molecular graphs (ogbg-molpcba, packed into fixed-size records by
`graphs`), the user's files in their released formats (TU graph sets,
`tudataset`; MIT-BIH heartbeats, `mitbih`; Universal Dependencies
treebanks, `conllu`), locally generated MNIST-1D and the regression sets
generated in-process by `synthetic` are read once into host arrays
(`load_split`); `normalize` is the per-dataset input normalization every
feeder applies on device.
Reading through TFDS (preparing, offline errors, process splits) is
`tfds_data`'s, label noise `label_noise`'s. With several processes, each
reads its own share of every split (`jax.process_index()`), so no process
holds another's examples.
"""

import dataclasses
import hashlib

from etils import epy
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from configuration import config_util
from input_pipeline import conllu
from input_pipeline import graphs
from input_pipeline import mitbih
from input_pipeline import mnist_1d
from input_pipeline import spec as spec_lib
from input_pipeline import synthetic
from input_pipeline import text
from input_pipeline import tfds_data
from input_pipeline import tudataset
from input_pipeline.spec import DatasetSpec
from input_pipeline.spec import Split
import tasks

# TFDS (0.3 s to import) only for the datasets it reads: a process training
# on MNIST-1D never imports it, nor TensorFlow.
with epy.lazy_imports():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top


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
INPUT_KEYS = {'tokens': ('vocab_size', 'max_length')}
# The node and edge budgets of the graph records, for the sets whose
# graphs are padded to the config's sizes (a TU set's are its largest
# graph's).
GRAPH_BUDGET_KEYS = ('max_nodes', 'max_edges')

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
    'mnist1d': DatasetSpec(
        num_classes=10,
        inputs='features',
        reader=mnist_1d.read,
    ),
    # Maas et al. (2011): 25,000 training and 25,000 test movie reviews,
    # positive or negative.
    'imdb_reviews': DatasetSpec(num_classes=2, inputs='tokens'),
    # Socher et al. (2013), GLUE's SST-2: 67,349 training and 872 validation
    # sentences, positive or negative. GLUE's test labels are hidden, so
    # the validation split is the test set, as in Flax's sst2 example.
    'glue/sst2': DatasetSpec(
        num_classes=2,
        inputs='tokens',
        test_split='validation',
        tfds_features=('sentence', 'label'),
    ),
    # Silveira et al. (2014), Universal Dependencies' English Web Treebank
    # from its CoNLL-U files: about 12,500 training, 2,000 dev and 2,100 test
    # sentences, a UPOS tag per word.
    'ud_en_ewt': DatasetSpec(
        num_classes=len(conllu.UPOS_TAGS),
        inputs='tokens',
        task=tasks.TASKS['tagging'],
        reader=conllu.read,
        validation_split=True,
        download=conllu.DOWNLOAD,
    ),
    # Moody & Mark (2001), Kachuee et al.'s CSV: 87,554 training and 21,892
    # test heartbeats of 187 steps, 5 classes.
    'mitbih': DatasetSpec(
        num_classes=mitbih.NUM_CLASSES,
        inputs='features',
        reader=mitbih.read,
        download=mitbih.DOWNLOAD,
    ),
    # Hu et al. (2020), OGB: 437,929 molecules (350,343 training, 43,793
    # test), 128 bioassays each, most of them unlabeled for a given molecule.
    'ogbg_molpcba': DatasetSpec(
        num_classes=128,
        inputs='graphs',
        task=tasks.TASKS['multilabel'],
        keys=GRAPH_BUDGET_KEYS,
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
            reader=synthetic.read,
        )
        for name, keys in synthetic.KEYS.items()
    },
}


def dataset_keys() -> set[str]:
  """The config keys some dataset alone reads (DatasetSpec.keys)."""
  return set(tudataset.KEYS).union(*(s.keys for s in DATASETS.values()))


def get_spec(name: str) -> DatasetSpec:
  """The spec of a dataset of the registry (not a TU set, whose spec
  depends on its files: `dataset_spec`)."""
  config_util.require(
      name in DATASETS,
      f'unknown dataset {name!r}; known: {", ".join(sorted(DATASETS))}, '
      'and tu/NAME for a TU graph set',
  )
  return DATASETS[name]


def dataset_spec(config: ml_collections.ConfigDict) -> DatasetSpec:
  """The spec of `config.dataset`, with a graph set's record layout (a TU
  set's read from its files; ConfigError if they are missing or
  malformed)."""
  if config.dataset.startswith(tudataset.PREFIX):
    return tudataset.spec(config)
  spec = get_spec(config.dataset)
  if spec.inputs == 'graphs':
    return dataclasses.replace(
        spec,
        graph_layout=graphs.Layout(
            graphs.ATOM_FEATURE_SIZES, config.max_nodes, config.max_edges
        ),
    )
  return spec


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
  return spec_lib.fixed_subset(count, fraction, VALIDATION_SEED)


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
  if images.dtype != object or not dataset_spec(config).is_image:
    return images
  feature = tfds_data.prepared_builder(config).info.features['image']
  return np.stack([feature.decode_example_np(x) for x in images]).astype(
      np.uint8
  )


def load_validation_split(config: ml_collections.ConfigDict) -> Split:
  """This process's share of the validation examples: the dataset's own
  validation split, or the config.validation_fraction of the training
  split held out for validation."""
  spec = dataset_spec(config)
  if spec.validation_split:
    split = spec.reader(config, 'validation')
  else:
    split = _read(config, train=True)
    held_out = _held_out(len(split), config.validation_fraction)
    split = Split(split.images[held_out], split.labels[held_out])
  return _tokenized(
      config,
      Split(_process_shard(split.images), _process_shard(split.labels)),
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
  digest = hashlib.sha256()
  for words in texts:  # Raw bytes, or a tuple of words.
    digest.update(words if isinstance(words, bytes) else repr(words).encode())
    digest.update(b'\0')
  key = (digest.hexdigest(), config.vocab_size)
  if key not in _vocabularies:
    _vocabularies[key] = text.build_vocabulary(texts, config.vocab_size)
  return _vocabularies[key]


def _tokenized(config: ml_collections.ConfigDict, split: Split) -> Split:
  """Texts as config.max_length token ids (and a tagged text's tags as
  config.max_length tags); other inputs unchanged."""
  spec = dataset_spec(config)
  if spec.inputs != 'tokens':
    return split
  return Split(
      text.encode(split.images, vocabulary(config), config.max_length),
      text.encode_tags(split.labels, config.max_length)
      if spec.task.name == 'tagging'
      else split.labels,
  )


def _read(
    config: ml_collections.ConfigDict, train: bool, decode: bool = True
) -> Split:
  """The whole training split, or this process's share of the test split
  (texts as raw bytes; TFDS images as encoded bytes unless `decode`)."""
  spec = dataset_spec(config)
  if spec.reader:
    if not train:
      split = spec.reader(config, 'test')
      return Split(_process_shard(split.images), _process_shard(split.labels))
    split = spec.reader(config, 'train')
    first = config.num_train_examples or len(split)
    return Split(split.images[:first], split.labels[:first])
  tfds_data.tensorflow_off_accelerators()
  builder = tfds_data.prepared_builder(config)
  split = (
      tfds_data.train_split_name(config)
      if train
      else tfds_data.process_split(spec.test_split, train=False)
  )
  if spec.inputs == 'graphs':
    return _read_graphs(
        spec, builder.as_dataset(split=split, shuffle_files=False)
    )
  encoded = not decode and spec.is_image
  ds = builder.as_dataset(
      split=split,
      as_supervised=not spec.tfds_features,
      shuffle_files=False,
      decoders={'image': tfds.decode.SkipDecoding()} if encoded else None,
  )
  if spec.tfds_features:
    ds = ds.map(lambda example: tuple(example[k] for k in spec.tfds_features))
  inputs, labels = zip(*tfds.as_numpy(ds.batch(10_000)))
  inputs = np.concatenate(inputs)
  return Split(
      inputs if spec.inputs == 'tokens' or encoded else inputs.astype(np.uint8),
      np.concatenate(labels).astype(np.int32),
  )


def _read_graphs(spec: DatasetSpec, ds) -> Split:
  """OGB graph-property examples as graph records and int8 labels (NaN, an
  unlabeled task, becomes tasks.MISSING)."""
  examples = list(tfds.as_numpy(ds))
  records = graphs.pack(
      ((e['node_feat'], e['edge_index']) for e in examples), spec.graph_layout
  )
  labels = (
      np.stack([e['labels'] for e in examples])
      if examples
      else (np.zeros((0, spec.num_classes), np.float32))
  )
  return Split(
      records, np.where(np.isnan(labels), tasks.MISSING, labels).astype(np.int8)
  )


def example_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """Shape of one network input, from metadata (or the test split of a
  dataset read from files or generated)."""
  spec = dataset_spec(config)
  if spec.inputs == 'tokens':
    return (config.max_length,)
  if spec.inputs == 'graphs':
    return (spec.graph_layout.record_size,)
  if spec.reader:
    return spec.reader(config, 'test').images.shape[1:]
  if not spec.in_memory:
    return (config.image_size, config.image_size, 3)
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
