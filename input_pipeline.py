"""Datasets: TFDS image classification data and locally generated MNIST-1D.

Datasets that fit in memory (MNIST, Fashion-MNIST, CIFAR-10/100, MNIST-1D) are
read once into host arrays (`load_split`) that the training loop keeps on the
accelerators; shuffling, batching, normalization and augmentation then happen
on device (`normalize`, `random_crop_flip`). ImageNet is streamed with tf.data
(`imagenet_batches`), decoded and cropped on the host.

With several processes, each reads its own share of every split
(`jax.process_index()`), so no process holds another's examples.
"""

import dataclasses
import random
from typing import Iterator, Sequence

import jax
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

# Random crops pad this many pixels on each side (CIFAR convention).
CROP_PADDING = 4


class DatasetUnavailableError(RuntimeError):
  """The dataset is neither in the data directory nor downloadable."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What the pipeline needs to know about a dataset.

  Images are stored as uint8 and normalized on device to
  (x / 255 - mean) / std per channel; feature vectors (MNIST-1D) are stored
  as float32, already standardized.
  """

  num_classes: int
  test_split: str = 'test'
  mean: tuple[float, ...] = (0.0,)
  std: tuple[float, ...] = (1.0,)
  is_image: bool = True
  in_memory: bool = True


DATASETS = {
    # MNIST-style inputs are only scaled to [0, 1], as in Shin et al.'s code.
    'mnist': DatasetSpec(num_classes=10),
    'fashion_mnist': DatasetSpec(num_classes=10),
    'cifar10': DatasetSpec(num_classes=10, mean=(0.4914, 0.4822, 0.4465),
                           std=(0.2470, 0.2435, 0.2616)),
    'cifar100': DatasetSpec(num_classes=100, mean=(0.5071, 0.4865, 0.4409),
                            std=(0.2673, 0.2564, 0.2762)),
    'imagenet2012': DatasetSpec(num_classes=1000, test_split='validation',
                                mean=(0.485, 0.456, 0.406),
                                std=(0.229, 0.224, 0.225), in_memory=False),
    # Greydanus (2020): 4,000 train / 1,000 test signals of length 40,
    # generated locally by the `mnist1d` package.
    'mnist1d': DatasetSpec(num_classes=10, is_image=False),
}


def get_spec(name: str) -> DatasetSpec:
  if name not in DATASETS:
    raise ValueError(f'unknown dataset {name!r}; known datasets: '
                     f'{", ".join(sorted(DATASETS))}')
  return DATASETS[name]


@dataclasses.dataclass
class Split:
  """This process's share of a split, on the host."""

  images: np.ndarray  # uint8 [n, h, w, c] images or float32 [n, d] features.
  labels: np.ndarray  # int32 [n]
  # Which labels label noise replaced (see add_label_noise); None if none.
  flipped: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.labels)


def _train_split_name(config: ml_collections.ConfigDict) -> str:
  if config.num_train_examples:
    return f'train[:{config.num_train_examples}]'
  return 'train'


def _process_split(split: str, train: bool):
  # Training drops the remainder so every process takes the same number of
  # steps; evaluation keeps every example (the caller pads and masks).
  return tfds.split_for_jax_process(split, drop_remainder=train)


def _prepared_builder(config: ml_collections.ConfigDict
                      ) -> tfds.core.DatasetBuilder:
  """Returns the TFDS builder, downloading the data if allowed and needed."""
  builder = tfds.builder(config.dataset, data_dir=config.data_dir)
  if builder.is_prepared():
    return builder
  where = (f'config.data_dir={config.data_dir!r}' if config.data_dir else
           f'the TFDS data directory {tfds.core.constants.DATA_DIR!r}'
           ' (set by TFDS_DATA_DIR)')
  advice = ('point config.data_dir or the TFDS_DATA_DIR environment variable '
            'at a TFDS data directory that holds it')
  if not config.download:
    raise DatasetUnavailableError(
        f'dataset {config.dataset!r} is not in {where} and '
        f'config.download is False: {advice}')
  download_config = tfds.download.DownloadConfig(manual_dir=config.manual_dir)
  try:
    builder.download_and_prepare(download_config=download_config)
  except Exception as e:  # Network, manual-download and permission failures.
    raise DatasetUnavailableError(
        f'dataset {config.dataset!r} is not in {where} and could not be '
        f'downloaded ({type(e).__name__}: {e}): {advice}') from e
  return builder


def _mnist1d() -> dict[str, np.ndarray]:
  """Generates MNIST-1D with the package's default (canonical) arguments."""
  import mnist1d.data  # pylint: disable=g-import-not-at-top
  # make_dataset seeds NumPy's and Python's global generators; restore them
  # so that generating data has no side effects on the caller.
  np_state, py_state = np.random.get_state(), random.getstate()
  try:
    return mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
  finally:
    np.random.set_state(np_state)
    random.setstate(py_state)


def _process_shard(array: np.ndarray, train: bool) -> np.ndarray:
  """This process's contiguous share, split as tfds.split_for_jax_process."""
  count, index = jax.process_count(), jax.process_index()
  if train:
    size = len(array) // count
    return array[index * size:(index + 1) * size]
  return np.array_split(array, count)[index]


def load_split(config: ml_collections.ConfigDict, train: bool) -> Split:
  """Loads this process's share of the train or test split into memory."""
  spec = get_spec(config.dataset)
  if config.dataset == 'mnist1d':
    data = _mnist1d()
    images, labels = (data['x'], data['y']) if train else (
        data['x_test'], data['y_test'])
    if train and config.num_train_examples:
      images = images[:config.num_train_examples]
      labels = labels[:config.num_train_examples]
    return Split(_process_shard(images.astype(np.float32), train),
                 _process_shard(labels.astype(np.int32), train))
  builder = _prepared_builder(config)
  split = _train_split_name(config) if train else spec.test_split
  ds = builder.as_dataset(split=_process_split(split, train),
                          as_supervised=True, shuffle_files=False)
  images, labels = zip(*tfds.as_numpy(ds.batch(10_000)))
  return Split(np.concatenate(images).astype(np.uint8),
               np.concatenate(labels).astype(np.int32))


def example_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """Shape of one network input, from metadata (no data is read)."""
  if config.dataset == 'mnist1d':
    return (_mnist1d()['x'].shape[1],)
  if config.dataset == 'imagenet2012':
    return (config.image_size, config.image_size, 3)
  return tuple(_prepared_builder(config).info.features['image'].shape)


LABEL_NOISE_TYPES = ('symmetric', 'asymmetric')


def add_label_noise(split: Split, num_classes: int, fraction: float,
                    kind: str, key: jax.Array) -> Split:
  """Replaces the labels of exactly round(fraction * n) training examples.

  Which examples, and their new labels, are drawn for the whole training
  split from `key` alone, so the noisy set is the same for every optimizer,
  device and process count; each process keeps its own (contiguous) share.

  * symmetric: the new label is uniform over the other classes;
  * asymmetric: class c becomes class (c + 1) mod num_classes, a fixed
    permutation without fixed points (the "pair flipping" of Han et al.,
    2018).
  """
  if kind not in LABEL_NOISE_TYPES:
    raise ValueError(f'unknown label noise type {kind!r}')
  size = len(split)
  offset, total = jax.process_index() * size, jax.process_count() * size
  which_key, class_key = jax.random.split(key)
  chosen = np.asarray(jax.random.permutation(which_key, total))[
      :round(fraction * total)]
  flipped = np.zeros(total, bool)
  flipped[chosen] = True
  flipped = flipped[offset:offset + size]
  if kind == 'symmetric':
    shift = np.asarray(jax.random.randint(class_key, (total,), 1,
                                          num_classes))[offset:offset + size]
  else:
    shift = 1
  noisy = (split.labels + shift) % num_classes
  return Split(split.images, np.where(flipped, noisy, split.labels).astype(
      np.int32), flipped)


# --- On-device preprocessing -------------------------------------------------


def normalize(images: jax.Array, spec: DatasetSpec) -> jax.Array:
  """uint8 images -> float32 (x / 255 - mean) / std; features pass through."""
  if not spec.is_image:
    return images.astype(jnp.float32)
  mean = jnp.asarray(spec.mean, jnp.float32)
  std = jnp.asarray(spec.std, jnp.float32)
  return (images.astype(jnp.float32) / 255.0 - mean) / std


def random_crop_flip(images: jax.Array, keys: jax.Array,
                     padding: int = CROP_PADDING) -> jax.Array:
  """Zero-pads by `padding`, crops back at a random offset, flips half the time.

  `keys` holds one PRNG key per example, so an example's augmentation does not
  depend on the batch it lands in (or on the number of devices). Works on any
  dtype: it runs on uint8 images before normalization (padding = black).
  """

  def crop_flip_one(image, key):
    offset_key, flip_key = jax.random.split(key)
    top, left = jax.random.randint(offset_key, (2,), 0, 2 * padding + 1)
    padded = jnp.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    crop = jax.lax.dynamic_slice(padded, (top, left, 0), image.shape)
    return jnp.where(jax.random.bernoulli(flip_key), crop[:, ::-1], crop)

  return jax.vmap(crop_flip_one)(images, keys)


# --- Streaming (ImageNet) ----------------------------------------------------

# Inception-style crops, as in Flax's ImageNet example, made stateless (seeded
# per example) so an epoch's data is the same after a restart.
_RESIZE_CROP_PADDING = 32


def _center_crop(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
  shape = tf.io.extract_jpeg_shape(image_bytes)
  side = tf.cast(
      image_size / (image_size + _RESIZE_CROP_PADDING) *
      tf.cast(tf.minimum(shape[0], shape[1]), tf.float32), tf.int32)
  window = tf.stack([(shape[0] - side + 1) // 2, (shape[1] - side + 1) // 2,
                     side, side])
  image = tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3)
  return tf.image.resize(image, [image_size, image_size], method='bicubic')


def _random_resized_crop(image_bytes: tf.Tensor, image_size: int,
                         seed: tf.Tensor) -> tf.Tensor:
  shape = tf.io.extract_jpeg_shape(image_bytes)
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
      min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3),
      area_range=(0.08, 1.0), max_attempts=10,
      use_image_if_no_bounding_boxes=True)
  window = tf.stack([begin[0], begin[1], size[0], size[1]])
  image = tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3)
  image = tf.image.resize(image, [image_size, image_size], method='bicubic')
  return tf.image.stateless_random_flip_left_right(image, seed=seed)


def imagenet_batches(config: ml_collections.ConfigDict, train: bool,
                     epoch: int, local_batch_size: int, skip: int = 0
                     ) -> tuple[Iterator[dict[str, np.ndarray]], int]:
  """Streams one epoch of this process's ImageNet share in uint8 batches.

  Returns (iterator, number of batches in the whole epoch). Training batches
  are full (the remainder is dropped) and shuffled per epoch with a seed
  derived from (config.seed, epoch); evaluation batches cover every example
  once, the last one padded, with a boolean 'valid' entry marking the real
  examples. The iterator starts after the first `skip` batches, which are
  never decoded (resuming inside an epoch).
  """
  builder = _prepared_builder(config)
  split = _process_split(_train_split_name(config) if train else
                         get_spec(config.dataset).test_split, train)
  ds = builder.as_dataset(split=split, shuffle_files=False,
                          decoders={'image': tfds.decode.SkipDecoding()})
  num_examples = int(ds.cardinality())
  options = tf.data.Options()
  options.deterministic = True
  ds = ds.with_options(options)
  if train:
    ds = ds.shuffle(min(num_examples, 16 * local_batch_size),
                    seed=config.seed * 100_003 + epoch,
                    reshuffle_each_iteration=False)
  augment = train and config.augment

  def decode(index, example):
    if augment:
      seed = tf.stack([tf.constant(config.seed, tf.int64),
                       tf.cast(epoch, tf.int64) * num_examples + index])
      image = _random_resized_crop(example['image'], config.image_size, seed)
    else:
      image = _center_crop(example['image'], config.image_size)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return {'image': image, 'label': tf.cast(example['label'], tf.int32),
            'valid': True}

  # Skipped before decoding, after enumerate: augmentation is keyed by the
  # example's index in the epoch.
  ds = ds.enumerate().skip(skip * local_batch_size).map(
      decode, num_parallel_calls=tf.data.AUTOTUNE)
  if train:
    num_batches = num_examples // local_batch_size
    ds = ds.batch(local_batch_size, drop_remainder=True)
  else:
    num_batches = -(-num_examples // local_batch_size)
    ds = ds.padded_batch(local_batch_size).map(
        lambda b: _pad_batch(b, local_batch_size))
  return iter(tfds.as_numpy(ds.prefetch(tf.data.AUTOTUNE))), num_batches


def _pad_batch(batch: dict[str, tf.Tensor], size: int
               ) -> dict[str, tf.Tensor]:
  """Pads a short final batch to `size`; padded entries have valid=False."""
  missing = size - tf.shape(batch['label'])[0]
  return {k: tf.pad(v, [[0, missing]] + [[0, 0]] * (len(v.shape) - 1))
          for k, v in batch.items()}


# --- Device layout -----------------------------------------------------------
# Training runs under jax.shard_map over a 1D mesh whose axis (AXIS) runs over
# all devices, each process's devices contiguous (see create_mesh). Inputs
# are global arrays built from each process's local data; `input_specs` says
# how each is split over the devices.

AXIS = 'batch'


def create_mesh() -> jax.sharding.Mesh:
  """A 1D mesh over all devices, grouped by process."""
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  return jax.sharding.Mesh(np.array(devices), (AXIS,))


def local_device_index() -> jax.Array:
  """This device's index among its process's devices (inside shard_map)."""
  return jax.lax.axis_index(AXIS) % jax.local_device_count()


def global_array(mesh: jax.sharding.Mesh, spec: P, local: np.ndarray
                 ) -> jax.Array:
  """The global array whose process-local part is `local`."""
  return jax.make_array_from_process_local_data(
      jax.NamedSharding(mesh, spec), local)


def _per_device_copies(mesh: jax.sharding.Mesh, x: np.ndarray) -> jax.Array:
  """[devices, ...]: every device holds its process's whole `x`."""
  count = jax.local_device_count()
  return global_array(mesh, P(AXIS), np.broadcast_to(x, (count,) + x.shape))


def select_replica(inputs: dict[str, jax.Array], axes: dict[str, int | None],
                   replica: int) -> dict[str, jax.Array]:
  """One replica's view of inputs whose `axes` run over replicas."""
  return {name: x if axes[name] is None else jnp.take(x, replica, axes[name])
          for name, x in inputs.items()}


def dispatch_sizes(steps_per_epoch: int, steps_per_dispatch: int,
                   start: int = 0, every: int = 0) -> list[int]:
  """Steps of each dispatch of an epoch resumed at step `start` of it.

  Dispatches end at the multiples of `steps_per_dispatch` and, if `every`,
  of `every` (where the loop checkpoints), counted from the epoch's start:
  the same grid whether or not the run was resumed, so a resumed epoch sums
  its metrics in the same order as an uninterrupted one.
  """
  ends = {steps_per_epoch}
  for period in (steps_per_dispatch, every):
    if period:
      ends.update(range(period, steps_per_epoch, period))
  ends = sorted(end for end in ends if end > start)
  return [end - begin for begin, end in zip([start] + ends, ends)]


class OnDeviceTrainData:
  """The training split held on every device, batched on device.

  Epoch e visits this process's examples in the order of a permutation drawn
  from (data_key, e); step s of the epoch takes the s-th block of
  `local_batch_size` indices and device d the d-th slice of that block. The
  order depends only on the seed and the epoch, so a run resumed from an
  epoch boundary sees the same data as one that never stopped, and the
  examples of a global batch do not depend on the number of devices.

  With several replicas (models trained side by side, see
  train.replica_configs), each has its own data order, augmentation and
  label noise, drawn from its own keys; `replica_axes` says which axis of
  each input runs over replicas (None: shared).
  """

  def __init__(self, split: Split, spec: DatasetSpec,
               config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh,
               replica_keys: Sequence[dict[str, jax.Array]]):
    self.spec = spec
    self.augment = config.augment
    self.local_batch_size = config.batch_size // jax.process_count()
    self.device_batch_size = self.local_batch_size // jax.local_device_count()
    self.steps_per_epoch = len(split) // self.local_batch_size
    self.example_shape = split.images.shape[1:]
    self._arrays = {'images': _per_device_copies(mesh, split.images)}
    self.replica_axes = {'images': None, 'permutation': 0, 'augment_key': 0}
    if config.label_noise:
      noisy = [add_label_noise(split, spec.num_classes, config.label_noise,
                               config.label_noise_type, keys['label_noise'])
               for keys in replica_keys]
      self.flipped_fractions = [float(np.mean(n.flipped)) for n in noisy]
      for name in ('labels', 'flipped'):
        self._arrays[name] = _per_device_copies(
            mesh, np.stack([getattr(n, name) for n in noisy]))
        self.replica_axes[name] = 1  # [device, replica, example]
    else:
      self.flipped_fractions = [0.0] * len(replica_keys)
      self._arrays['labels'] = _per_device_copies(mesh, split.labels)
      self.replica_axes['labels'] = None
    self.input_specs = {name: P(AXIS) for name in self._arrays} | {
        'permutation': P(), 'augment_key': P()}
    replicated = jax.NamedSharding(mesh, P())
    self._augment_keys = jax.device_put(jnp.stack([
        jax.random.key_data(keys['augment']) for keys in replica_keys]),
                                        replicated)
    data_keys = jnp.stack([keys['data'] for keys in replica_keys])
    self._permutations = jax.jit(
        lambda epoch: jax.vmap(lambda key: jax.random.permutation(
            jax.random.fold_in(key, epoch), len(split)))(data_keys),
        out_shardings=replicated)

  def epoch_chunks(self, epoch: int, steps_per_dispatch: int,
                   start: int = 0, every: int = 0
                   ) -> Iterator[tuple[dict[str, jax.Array], int]]:
    """Yields (inputs, number of steps) for each dispatch of `epoch` from
    its step `start` on (see dispatch_sizes)."""
    inputs = dict(self._arrays, permutation=self._permutations(epoch),
                  augment_key=self._augment_keys)
    for size in dispatch_sizes(self.steps_per_epoch, steps_per_dispatch,
                               start, every):
      yield inputs, size

  def device_batch(self, inputs: dict[str, jax.Array], index: jax.Array,
                   step: jax.Array) -> dict[str, jax.Array]:
    """This device's batch for global step `step`, for one replica's view of
    the inputs: normalized images, labels and, with label noise, which labels
    were flipped.

    Runs inside shard_map; `index` (the step within the dispatch) is unused,
    the position comes from the step counter.
    """
    del index
    epoch, position = jnp.divmod(step, self.steps_per_epoch)
    start = (position * self.local_batch_size +
             local_device_index() * self.device_batch_size)
    indices = jax.lax.dynamic_slice(inputs['permutation'], (start,),
                                    (self.device_batch_size,))
    images = inputs['images'][0][indices]
    if self.augment:
      # Keyed by (epoch, example): independent of batch size and devices.
      epoch_key = jax.random.fold_in(
          jax.random.wrap_key_data(inputs['augment_key']), epoch)
      keys = jax.vmap(jax.random.fold_in, (None, 0))(epoch_key, indices)
      images = random_crop_flip(images, keys)
    batch = {'images': normalize(images, self.spec),
             'labels': inputs['labels'][0][indices]}
    if 'flipped' in inputs:
      batch['flipped'] = inputs['flipped'][0][indices]
    return batch


class StreamingTrainData:
  """ImageNet's training split streamed from tf.data, a dispatch at a time."""

  def __init__(self, spec: DatasetSpec, config: ml_collections.ConfigDict,
               mesh: jax.sharding.Mesh):
    self.spec = spec
    self.config = config
    self.mesh = mesh
    self.local_batch_size = config.batch_size // jax.process_count()
    _, num_batches = imagenet_batches(config, True, 0,
                                      self.local_batch_size)
    self.steps_per_epoch = num_batches
    self.example_shape = (config.image_size, config.image_size, 3)
    # One replica; no label noise (both need an in-memory dataset).
    self.flipped_fractions = [0.0]
    self.input_specs = {'images': P(None, AXIS), 'labels': P(None, AXIS)}
    self.replica_axes = {'images': None, 'labels': None}

  def epoch_chunks(self, epoch: int, steps_per_dispatch: int,
                   start: int = 0, every: int = 0
                   ) -> Iterator[tuple[dict[str, jax.Array], int]]:
    """Yields stacks of `steps_per_dispatch` batches (zero-padded when a
    dispatch is shorter, see dispatch_sizes) from step `start` of `epoch`."""
    batches, num_batches = imagenet_batches(self.config, True, epoch,
                                            self.local_batch_size, start)
    for count in dispatch_sizes(num_batches, steps_per_dispatch, start,
                                every):
      stack = [next(batches) for _ in range(count)]
      stack += [jax.tree.map(np.zeros_like, stack[0])] * (
          steps_per_dispatch - count)
      yield {name: global_array(self.mesh, P(None, AXIS),
                                np.stack([b[key] for b in stack]))
             for name, key in (('images', 'image'), ('labels', 'label'))
             }, count

  def device_batch(self, inputs: dict[str, jax.Array], index: jax.Array,
                   step: jax.Array) -> dict[str, jax.Array]:
    del step
    return {'images': normalize(inputs['images'][index], self.spec),
            'labels': inputs['labels'][index]}


def _local_eval_batch_size(config: ml_collections.ConfigDict) -> int:
  """Per-process evaluation batch, rounded up to a multiple of its devices."""
  devices = jax.local_device_count()
  return -(-config.eval_batch_size // devices) * devices


def _max_over_processes(value: int) -> int:
  return int(np.max(multihost_utils.process_allgather(np.int64(value))))


# Evaluation inputs are [batches, batch, ...], each batch split over devices.
EVAL_INPUT_SPECS = {'images': P(None, AXIS), 'labels': P(None, AXIS),
                    'valid': P(None, AXIS)}


class OnDeviceEvalData:
  """The test split, padded to whole batches, split over the devices."""

  def __init__(self, split: Split, config: ml_collections.ConfigDict,
               mesh: jax.sharding.Mesh):
    batch = _local_eval_batch_size(config)
    # Every process runs the same number of batches (the collectives need
    # it); padded examples are masked out by `valid`.
    size = -(-_max_over_processes(len(split)) // batch) * batch
    pad = size - len(split)

    def layout(x):
      x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
      return global_array(mesh, P(None, AXIS),
                          x.reshape((-1, batch) + x.shape[1:]))

    self._inputs = {'images': layout(split.images),
                    'labels': layout(split.labels),
                    'valid': layout(np.ones(len(split), dtype=bool))}

  def groups(self) -> Iterator[dict[str, jax.Array]]:
    """Yields the whole padded test split as one group of batches."""
    yield self._inputs


class StreamingEvalData:
  """ImageNet's validation split streamed from tf.data, a batch at a time."""

  def __init__(self, config: ml_collections.ConfigDict,
               mesh: jax.sharding.Mesh):
    self.config = config
    self.mesh = mesh
    self.local_batch_size = _local_eval_batch_size(config)

  def groups(self) -> Iterator[dict[str, jax.Array]]:
    batches, num_batches = imagenet_batches(self.config, False, 0,
                                            self.local_batch_size)
    size, side = self.local_batch_size, self.config.image_size
    # Processes with fewer batches pass empty ones (see OnDeviceEvalData).
    empty = {'image': np.zeros((size, side, side, 3), np.uint8),
             'label': np.zeros(size, np.int32),
             'valid': np.zeros(size, bool)}
    for i in range(_max_over_processes(num_batches)):
      batch = next(batches) if i < num_batches else empty
      yield {name: global_array(self.mesh, P(None, AXIS), batch[key][None])
             for name, key in (('images', 'image'), ('labels', 'label'),
                               ('valid', 'valid'))}


def create_datasets(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh,
                    replica_keys: Sequence[dict[str, jax.Array]]):
  """Returns (training data, evaluation data) for `config.dataset`.

  `replica_keys` holds the 'data', 'augment' and 'label_noise' keys of each
  replica (train.seed_keys).
  """
  spec = get_spec(config.dataset)
  if spec.in_memory:
    train = OnDeviceTrainData(load_split(config, train=True), spec, config,
                              mesh, replica_keys)
    return train, OnDeviceEvalData(load_split(config, train=False), config,
                                   mesh)
  return (StreamingTrainData(spec, config, mesh),
          StreamingEvalData(config, mesh))
