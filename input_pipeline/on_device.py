"""On-device feeding of datasets held in memory: the whole split is copied
to the devices once, and every step gathers, augments and normalizes its
batch on device (inside the training loop's dispatch)."""

from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np

from input_pipeline import feeding
from input_pipeline.label_noise import add_label_noise
from input_pipeline.sources import DatasetSpec
from input_pipeline.sources import normalize
from input_pipeline.sources import Split
from runtime import parallel

# Random crops pad this many pixels on each side (CIFAR convention).
CROP_PADDING = 4


def random_crop_flip(
    images: jax.Array, keys: jax.Array, padding: int = CROP_PADDING
) -> jax.Array:
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


def order_free(
    config: ml_collections.ConfigDict, num_examples: int, num_devices: int
) -> bool:
  """Whether a pass's update does not depend on the order of the examples
  (up to the order of floating-point sums): each step takes the whole
  training set, and GD, 1-SAM (each example its own ascent) or, on one
  device, n-SAM (one ascent on the whole batch; on several, each device
  ascends on its slice, which the order decides). Such passes draw no
  permutation, which costs more than a tiny model's step."""
  return config.batch_size == num_examples and (
      config.optimizer != 'sam'
      or config.sam_m == 1
      or (config.sam_m == 0 and num_devices == 1)
  )


class OnDeviceTrainData:
  """The training split held on every device, batched on device.

  Every process holds the whole split. An epoch is `config.epoch_passes`
  passes over it; pass p of epoch e (the run's pass q = e * passes + p)
  visits the examples in the order of a permutation drawn from
  (data_key, q) (in their own order where one step takes them all and the
  update does not depend on their order, see `order_free`); step s of the pass
  takes the s-th block of
  `config.batch_size` indices and device d (of all processes' devices) the
  d-th slice of that block. The order depends only
  on the seed and the epoch, so a run resumed inside an epoch sees the same
  data as one that never stopped, and the examples of a global batch do not
  depend on the number of devices or processes.

  With several replicas (models trained side by side, see
  run_state.replica_configs), each has its own data order, augmentation and
  label noise, drawn from its own keys; `replica_axes` says which axis of
  each input runs over replicas (None: shared).
  """

  def __init__(
      self,
      split: Split,
      spec: DatasetSpec,
      config: ml_collections.ConfigDict,
      mesh: jax.sharding.Mesh,
      replica_keys: Sequence[dict[str, jax.Array]],
  ):
    self.spec = spec
    self.augment = config.augment
    self.local_batch_size = config.batch_size // jax.process_count()
    self.device_batch_size = self.local_batch_size // jax.local_device_count()
    self.global_batch_size = config.batch_size
    self.passes = config.epoch_passes
    self.steps_per_pass = len(split) // self.global_batch_size
    self.steps_per_epoch = self.passes * self.steps_per_pass
    self.example_shape = split.images.shape[1:]
    self.shuffle = not order_free(config, len(split), jax.device_count())
    self._arrays = {'images': parallel.per_device_copies(mesh, split.images)}
    self.replica_axes = {'images': None, 'augment_key': 0}
    if self.shuffle:
      self.replica_axes['permutation'] = 0
    if config.label_noise:
      noisy = [
          add_label_noise(
              split,
              spec.num_classes,
              config.label_noise,
              config.label_noise_type,
              keys['label_noise'],
          )
          for keys in replica_keys
      ]
      self.flipped_fractions = [float(np.mean(n.flipped)) for n in noisy]
      for name in ('labels', 'flipped'):
        self._arrays[name] = parallel.per_device_copies(
            mesh, np.stack([getattr(n, name) for n in noisy])
        )
        self.replica_axes[name] = 1  # [device, replica, example]
    else:
      self.flipped_fractions = [0.0] * len(replica_keys)
      self._arrays['labels'] = parallel.per_device_copies(mesh, split.labels)
      self.replica_axes['labels'] = None
    self.input_specs = {name: P(parallel.AXIS) for name in self._arrays} | {
        'augment_key': P(),
    }
    if self.shuffle:
      self.input_specs['permutation'] = P()
    replicated = jax.NamedSharding(mesh, P())
    self._augment_keys = jax.device_put(
        jnp.stack(
            [jax.random.key_data(keys['augment']) for keys in replica_keys]
        ),
        replicated,
    )
    data_keys = jnp.stack([keys['data'] for keys in replica_keys])

    def epoch_order(key, epoch):
      """The epoch's passes' permutations, one after the other."""
      passes = epoch * self.passes + jnp.arange(self.passes)
      return jax.vmap(
          lambda q: jax.random.permutation(
              jax.random.fold_in(key, q), len(split)
          )
      )(passes).reshape(-1)

    # [replica, pass * example].
    self._permutations = jax.jit(
        lambda epoch: jax.vmap(epoch_order, (0, None))(data_keys, epoch),
        out_shardings=replicated,
    )
    self._num_examples = len(split)

  def epoch_chunks(
      self, epoch: int, steps_per_dispatch: int, start: int = 0, every: int = 0
  ) -> Iterator[tuple[dict[str, jax.Array], int]]:
    """Yields (inputs, number of steps) for each dispatch of `epoch` from
    its step `start` on (see dispatch_sizes)."""
    inputs = dict(self._arrays, augment_key=self._augment_keys)
    if self.shuffle:
      inputs['permutation'] = self._permutations(epoch)
    for size in feeding.dispatch_sizes(
        self.steps_per_epoch, steps_per_dispatch, start, every
    ):
      yield inputs, size

  def device_batch(
      self, inputs: dict[str, jax.Array], index: jax.Array, step: jax.Array
  ) -> dict[str, jax.Array]:
    """This device's batch for global step `step`, for one replica's view of
    the inputs: normalized images, labels and, with label noise, which labels
    were flipped.

    Runs inside shard_map; `index` (the step within the dispatch) is unused,
    the position comes from the step counter.
    """
    del index
    run_pass, position = jnp.divmod(step, self.steps_per_pass)
    start = (
        run_pass % self.passes * self._num_examples
        + position * self.global_batch_size
        + jax.lax.axis_index(parallel.AXIS) * self.device_batch_size
    )
    if self.shuffle:
      indices = jax.lax.dynamic_slice(
          inputs['permutation'], (start,), (self.device_batch_size,)
      )
    else:  # The pass is one step over the examples in their order.
      indices = start - run_pass % self.passes * self._num_examples
      indices += jnp.arange(self.device_batch_size)
    images = inputs['images'][0][indices]
    if self.augment:
      # Keyed by (pass, example): independent of batch size and devices.
      epoch_key = jax.random.fold_in(
          jax.random.wrap_key_data(inputs['augment_key']), run_pass
      )
      keys = jax.vmap(jax.random.fold_in, (None, 0))(epoch_key, indices)
      images = random_crop_flip(images, keys)
    batch = {
        'images': normalize(images, self.spec),
        'labels': inputs['labels'][0][indices],
    }
    if 'flipped' in inputs:
      batch['flipped'] = inputs['flipped'][0][indices]
    return batch


class OnDeviceEvalData:
  """The test split, padded to whole batches, split over the devices."""

  def __init__(
      self,
      split: Split,
      config: ml_collections.ConfigDict,
      mesh: jax.sharding.Mesh,
  ):
    batch = feeding.local_eval_batch_size(config)
    # Every process runs the same number of batches (the collectives need
    # it); padded examples are masked out by `valid`.
    size = -(-feeding.max_over_processes(len(split)) // batch) * batch
    pad = size - len(split)

    def layout(x):
      x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
      return parallel.global_array(
          mesh, P(None, parallel.AXIS), x.reshape((-1, batch) + x.shape[1:])
      )

    self._inputs = {
        'images': layout(split.images),
        'labels': layout(split.labels),
        'valid': layout(np.ones(len(split), dtype=bool)),
    }

  @property
  def inputs(self) -> dict[str, jax.Array]:
    """The whole padded split as [batches, batch, ...] arrays."""
    return self._inputs

  def groups(self) -> Iterator[dict[str, jax.Array]]:
    """Yields the whole padded test split as one group of batches."""
    yield self._inputs
