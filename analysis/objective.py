r"""The function the analysis studies: the training loss on a fixed subset.

    L(w) = (1/N) sum_i CE(f(M * w; x_i), y_i)

over N training examples drawn once with `config.analysis.seed`, with
BatchNorm in inference mode (the running statistics of the checkpoint, so L
is a deterministic function of w) and the pruning mask M applied. Because w
enters only as M * w, the gradient is M * grad L and the HVP is
M H (M v): derivatives live on the unpruned weights. The loss has no weight
decay term (it would add wd to every eigenvalue of the unpruned subspace).

The subset is laid out as [batches, batch, ...] with each batch split over
the devices (`SPECS`). Per-device code loops over its micro-batches,
averages, and `parallel.device_mean` averages over devices: all micro-batches
have the same size, so this is the mean over the subset, whatever the number
of devices. Gradients and HVPs are taken per micro-batch and accumulated, so
memory holds one micro-batch's activations.

The functions are not jitted: callers jit whole computations (a Lanczos
loop, a grid of losses) around them, with the data as an argument.
"""

from collections.abc import Callable
from typing import Any

import jax
from jax import lax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np

from analysis import hessian
from analysis import subset_cache
from configuration import config_util
from input_pipeline import label_noise
from input_pipeline import sources
from runs import run_state
from runtime import parallel
import tasks

PyTree = Any
Data = dict[str, jax.Array]
AXIS = parallel.AXIS
# Data: [batches, batch, ...], batches split over the devices.
SPECS = {'images': P(None, AXIS), 'labels': P(None, AXIS)}
REPLICATED = parallel.REPLICATED


def _training_examples(
    config: ml_collections.ConfigDict, count: int
) -> sources.Split:
  """This process's `count` examples of the analysis subset.

  In-memory datasets are loaded whole, with the run's label noise (the
  labels it trained on), but images stay encoded until chosen: count x
  processes examples are sampled without replacement with `analysis.seed`
  (the same set whatever the number of processes), each process takes its
  block of them and decodes only those. Streamed ones
  (ImageNet) are read through this process's training stream (its seeded
  shuffle, center crops) until `count` examples arrive.
  """
  spec = sources.dataset_spec(config)
  if spec.in_memory:
    split = sources.load_split(config, train=True, decode=False)
    if config.get('label_noise'):
      split = label_noise.add_label_noise(
          split,
          spec.num_classes,
          config.label_noise,
          config.label_noise_type,
          run_state.seed_keys(config.seed)['label_noise'],
      )
    total = count * jax.process_count()
    if total > len(split):
      batch = config.analysis.batch_size
      fits = len(split) // batch * batch
      advice = (
          f'set --config.analysis.num_examples={fits} (a multiple of '
          f'analysis.batch_size {batch})'
          if fits
          else f'set --config.analysis.num_examples and batch_size to at most '
          f'{len(split)}'
      )
      raise config_util.ConfigError(
          f'analysis.num_examples asks for {total} examples, but the '
          f'training split holds {len(split)}: {advice}'
      )
    rng = np.random.default_rng(config.analysis.seed)
    chosen = np.sort(rng.choice(len(split), total, replace=False))
    chosen = chosen[jax.process_index() * count :][:count]
    return sources.Split(
        sources.decode_images(config, split.images[chosen]),
        split.labels[chosen],
    )
  # Imported here: it imports TensorFlow, which a cached subset never needs.
  from input_pipeline import streaming  # pylint: disable=g-import-not-at-top

  unaugmented = ml_collections.ConfigDict(config.to_dict())
  unaugmented.augment = False
  batches, num_batches = streaming.imagenet_batches(unaugmented, True, 0, count)
  if num_batches < 1:
    raise config_util.ConfigError(
        f'analysis.num_examples asks for {count} examples per process, more '
        'than the training split holds'
    )
  batch = next(batches)
  return sources.Split(batch['image'], batch['label'])


def load_subset(
    config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh
) -> Data:
  """The analysis subset on the devices, laid out as `SPECS` says.

  Images stay uint8 on the devices (normalized in the loss). The size and
  batching come from config.analysis (num_examples, batch_size); `check`
  validates them first. The examples come from subset_cache when it holds
  them.
  """
  settings = config.analysis
  processes = jax.process_count()
  count = settings.num_examples // processes
  split = subset_cache.cached(
      config, count, lambda: _training_examples(config, count)
  )
  local_batch = settings.batch_size // processes

  def layout(x):
    return parallel.global_array(
        mesh, P(None, AXIS), x.reshape((-1, local_batch) + x.shape[1:])
    )

  return {'images': layout(split.images), 'labels': layout(split.labels)}


def analysis_state(state: run_state.TrainState) -> run_state.TrainState:
  """The state without the optimizer and the SAM variant's state, which no
  measurement uses (and whose static parts would otherwise key the
  compilation cache), computing in float32 whatever the run trained in."""
  return state.replace(
      tx=None, opt_state=None, sam_state=None, compute_dtype='float32'
  )


def batch_metrics(
    state: run_state.TrainState,
    params: PyTree,
    images: jax.Array,
    labels: jax.Array,
    spec: sources.DatasetSpec,
) -> dict[str, jax.Array]:
  """Mean loss and per-example metrics (the task's, e.g. accuracy) of one
  batch at masked `params`, BN inference."""
  logits = run_state.inference_logits(state, params, images, spec)
  return {
      'loss': state.task.losses(logits, labels).mean(),
      **{
          m.name: m.per_example(logits, labels).mean()
          for m in tasks.per_example_metrics(state.task)
      },
  }


def _mean_over_batches(
    fn: Callable[[jax.Array, jax.Array], PyTree], data: Data
) -> PyTree:
  """Mean of fn(images, labels) over this device's micro-batches, then over
  all devices (per-device code)."""
  images, labels = data['images'], data['labels']
  shapes = jax.eval_shape(fn, images[0], labels[0])
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

  def add(total, batch):
    return jax.tree.map(jnp.add, total, fn(*batch)), None

  total, _ = lax.scan(add, zeros, (images, labels))
  return parallel.device_mean(
      jax.tree.map(lambda t: t / images.shape[0], total)
  )


class Objective:
  """L, its gradient and HVP on a subset, data-parallel over `mesh`.

  Every function takes (state, params, data, ...): `state` supplies the
  model, BatchNorm statistics and mask, `params` the point w.
  """

  def __init__(self, spec: sources.DatasetSpec, mesh: jax.sharding.Mesh):
    self.spec = spec
    self._mesh = mesh

  def _parallel(
      self, fn: Callable[..., Any], num_replicated: int
  ) -> Callable[..., Any]:
    """shard_map of fn(state, params, data, *rest): data split, rest
    replicated, output replicated."""
    in_specs = (REPLICATED, REPLICATED, SPECS) + (REPLICATED,) * num_replicated
    return parallel.shard(fn, self._mesh, in_specs, REPLICATED)

  def analysis_state(self, state: run_state.TrainState) -> run_state.TrainState:
    """The state the functions below take (module's analysis_state)."""
    return analysis_state(state)

  def _batch_loss(self, state, images, labels):
    return lambda params: batch_metrics(
        state, params, images, labels, self.spec
    )['loss']

  def metrics(
      self, state: run_state.TrainState, params: PyTree, data: Data
  ) -> dict[str, jax.Array]:
    """{'loss': L(w), and the task's per-example metrics at w (accuracy)}."""

    def per_device(state, params, data):
      return _mean_over_batches(
          lambda x, y: batch_metrics(state, params, x, y, self.spec), data
      )

    return self._parallel(per_device, 0)(state, params, data)

  def loss(
      self, state: run_state.TrainState, params: PyTree, data: Data
  ) -> jax.Array:
    return self.metrics(state, params, data)['loss']

  def gradient(
      self, state: run_state.TrainState, params: PyTree, data: Data
  ) -> PyTree:
    """M * grad L(w)."""

    def per_device(state, params, data):
      return _mean_over_batches(
          lambda x, y: jax.grad(self._batch_loss(state, x, y))(params), data
      )

    return self._parallel(per_device, 0)(state, params, data)

  def hvp(
      self,
      state: run_state.TrainState,
      params: PyTree,
      data: Data,
      vector: PyTree,
  ) -> PyTree:
    """M H (M v), forward-over-reverse, per micro-batch."""

    def per_device(state, params, data, vector):
      return _mean_over_batches(
          lambda x, y: hessian.hvp(
              self._batch_loss(state, x, y), params, vector
          ),
          data,
      )

    return self._parallel(per_device, 1)(state, params, data, vector)

  def group_mean(
      self,
      fn: Callable[[Callable[[PyTree], jax.Array], PyTree], jax.Array],
      state: run_state.TrainState,
      params: PyTree,
      data: Data,
      group_size: int,
  ) -> jax.Array:
    """Mean over groups of `group_size` consecutive examples of
    fn(group loss, params), e.g. each group's own sharpness (m-sharpness).

    A group is a block of consecutive examples of a micro-batch, within one
    device's slice of it (`group_size` divides the per-device micro-batch),
    so the groups do not depend on the number of devices.
    """

    def per_device(state, params, data):
      def of_groups(images, labels):
        grouped = (
            images.reshape((-1, group_size) + images.shape[1:]),
            labels.reshape((-1, group_size) + labels.shape[1:]),
        )
        return jnp.mean(
            lax.map(lambda g: fn(self._batch_loss(state, *g), params), grouped)
        )

      return _mean_over_batches(of_groups, data)

    return self._parallel(per_device, 0)(state, params, data)
