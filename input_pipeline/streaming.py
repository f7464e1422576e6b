"""Host streaming of ImageNet with tf.data: decoded and cropped on the
host, a dispatch (training) or a batch (evaluation) at a time."""

from collections.abc import Iterator

import jax
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from input_pipeline import feeding
from input_pipeline.sources import dataset_spec
from input_pipeline.sources import DatasetSpec
from input_pipeline.sources import normalize
from input_pipeline.tfds_data import prepared_builder
from input_pipeline.tfds_data import process_split
from input_pipeline.tfds_data import tensorflow_off_accelerators
from input_pipeline.tfds_data import train_split_name
from runtime import parallel

# Inception-style crops, as in Flax's ImageNet example, made stateless (seeded
# per example) so an epoch's data is the same after a restart.
_RESIZE_CROP_PADDING = 32


def _center_crop(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
  shape = tf.io.extract_jpeg_shape(image_bytes)
  side = tf.cast(
      image_size
      / (image_size + _RESIZE_CROP_PADDING)
      * tf.cast(tf.minimum(shape[0], shape[1]), tf.float32),
      tf.int32,
  )
  window = tf.stack(
      [(shape[0] - side + 1) // 2, (shape[1] - side + 1) // 2, side, side]
  )
  image = tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3)
  return tf.image.resize(image, [image_size, image_size], method='bicubic')


def _random_resized_crop(
    image_bytes: tf.Tensor, image_size: int, seed: tf.Tensor
) -> tf.Tensor:
  shape = tf.io.extract_jpeg_shape(image_bytes)
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      shape,
      bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
      seed=seed,
      min_object_covered=0.1,
      aspect_ratio_range=(3 / 4, 4 / 3),
      area_range=(0.08, 1.0),
      max_attempts=10,
      use_image_if_no_bounding_boxes=True,
  )
  window = tf.stack([begin[0], begin[1], size[0], size[1]])
  image = tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3)
  image = tf.image.resize(image, [image_size, image_size], method='bicubic')
  return tf.image.stateless_random_flip_left_right(image, seed=seed)


def imagenet_batches(
    config: ml_collections.ConfigDict,
    train: bool,
    epoch: int,
    local_batch_size: int,
    skip: int = 0,
) -> tuple[Iterator[dict[str, np.ndarray]], int]:
  """Streams one epoch of this process's ImageNet share in uint8 batches.

  Returns (iterator, number of batches in the whole epoch). Training batches
  are full (the remainder is dropped) and shuffled per epoch with a seed
  derived from (config.seed, epoch); evaluation batches cover every example
  once, the last one padded, with a boolean 'valid' entry marking the real
  examples. The iterator starts after the first `skip` batches, which are
  never decoded (resuming inside an epoch).
  """
  tensorflow_off_accelerators()
  builder = prepared_builder(config)
  split = process_split(
      train_split_name(config) if train else dataset_spec(config).test_split,
      train,
  )
  ds = builder.as_dataset(
      split=split,
      shuffle_files=False,
      decoders={'image': tfds.decode.SkipDecoding()},
  )
  num_examples = int(ds.cardinality())
  options = tf.data.Options()
  options.deterministic = True
  ds = ds.with_options(options)
  if train:
    ds = ds.shuffle(
        min(num_examples, 16 * local_batch_size),
        seed=config.seed * 100_003 + epoch,
        reshuffle_each_iteration=False,
    )
  augment = train and config.augment

  def decode(index, example):
    if augment:
      seed = tf.stack(
          [
              tf.constant(config.seed, tf.int64),
              tf.cast(epoch, tf.int64) * num_examples + index,
          ]
      )
      image = _random_resized_crop(example['image'], config.image_size, seed)
    else:
      image = _center_crop(example['image'], config.image_size)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return {
        'image': image,
        'label': tf.cast(example['label'], tf.int32),
        'valid': True,
    }

  # Skipped before decoding, after enumerate: augmentation is keyed by the
  # example's index in the epoch.
  ds = (
      ds.enumerate()
      .skip(skip * local_batch_size)
      .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
  )
  if train:
    num_batches = num_examples // local_batch_size
    ds = ds.batch(local_batch_size, drop_remainder=True)
  else:
    num_batches = -(-num_examples // local_batch_size)
    ds = ds.padded_batch(local_batch_size).map(
        lambda b: _pad_batch(b, local_batch_size)
    )
  return iter(tfds.as_numpy(ds.prefetch(tf.data.AUTOTUNE))), num_batches


def _pad_batch(batch: dict[str, tf.Tensor], size: int) -> dict[str, tf.Tensor]:
  """Pads a short final batch to `size`; padded entries have valid=False."""
  missing = size - tf.shape(batch['label'])[0]
  return {
      k: tf.pad(v, [[0, missing]] + [[0, 0]] * (len(v.shape) - 1))
      for k, v in batch.items()
  }


class StreamingTrainData:
  """ImageNet's training split streamed from tf.data, a dispatch at a time."""

  def __init__(
      self,
      spec: DatasetSpec,
      config: ml_collections.ConfigDict,
      mesh: jax.sharding.Mesh,
  ):
    self.spec = spec
    self.config = config
    self.mesh = mesh
    self.local_batch_size = config.batch_size // jax.process_count()
    _, num_batches = imagenet_batches(config, True, 0, self.local_batch_size)
    self.steps_per_epoch = num_batches
    self.example_shape = (config.image_size, config.image_size, 3)
    # One replica; no label noise (both need an in-memory dataset).
    self.flipped_fractions = [0.0]
    self.input_specs = {
        'images': P(None, parallel.AXIS),
        'labels': P(None, parallel.AXIS),
    }
    self.replica_axes = {'images': None, 'labels': None}

  def epoch_chunks(
      self, epoch: int, steps_per_dispatch: int, start: int = 0, every: int = 0
  ) -> Iterator[tuple[dict[str, jax.Array], int]]:
    """Yields stacks of `steps_per_dispatch` batches (zero-padded when a
    dispatch is shorter, see dispatch_sizes) from step `start` of `epoch`."""
    batches, num_batches = imagenet_batches(
        self.config, True, epoch, self.local_batch_size, start
    )
    for count in feeding.dispatch_sizes(
        num_batches, steps_per_dispatch, start, every
    ):
      stack = [next(batches) for _ in range(count)]
      stack += [jax.tree.map(np.zeros_like, stack[0])] * (
          steps_per_dispatch - count
      )
      yield {
          name: parallel.global_array(
              self.mesh,
              P(None, parallel.AXIS),
              np.stack([b[key] for b in stack]),
          )
          for name, key in (('images', 'image'), ('labels', 'label'))
      }, count

  def device_batch(
      self, inputs: dict[str, jax.Array], index: jax.Array, step: jax.Array
  ) -> dict[str, jax.Array]:
    del step
    return {
        'images': normalize(inputs['images'][index], self.spec),
        'labels': inputs['labels'][index],
    }


class StreamingEvalData:
  """ImageNet's validation split streamed from tf.data, a batch at a time."""

  def __init__(
      self, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh
  ):
    self.config = config
    self.mesh = mesh
    self.local_batch_size = feeding.local_eval_batch_size(config)

  def groups(self) -> Iterator[dict[str, jax.Array]]:
    batches, num_batches = imagenet_batches(
        self.config, False, 0, self.local_batch_size
    )
    size, side = self.local_batch_size, self.config.image_size
    # Processes with fewer batches pass empty ones (see OnDeviceEvalData).
    empty = {
        'image': np.zeros((size, side, side, 3), np.uint8),
        'label': np.zeros(size, np.int32),
        'valid': np.zeros(size, bool),
    }
    for i in range(feeding.max_over_processes(num_batches)):
      batch = next(batches) if i < num_batches else empty
      yield {
          name: parallel.global_array(
              self.mesh, P(None, parallel.AXIS), batch[key][None]
          )
          for name, key in (
              ('images', 'image'),
              ('labels', 'label'),
              ('valid', 'valid'),
          )
      }
