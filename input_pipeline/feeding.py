"""What every feeder shares: the interface the training loop uses, the
grid of dispatches in an epoch, and the evaluation layout."""

from collections.abc import Iterator
from typing import Protocol

import jax
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np

from runtime.parallel import AXIS


class TrainFeeder(Protocol):
  """How the training loop reads a training split.

  `epoch_chunks` runs on the host and yields one dispatch's inputs at a
  time; `device_batch` runs on device, inside the dispatch, and cuts one
  step's batch out of them.
  """

  steps_per_epoch: int
  local_batch_size: int  # Examples per step on this process.
  example_shape: tuple[int, ...]
  flipped_fractions: list[float]  # Per replica: labels label noise flipped.
  input_specs: dict[str, P]  # How each input is split over the devices.
  replica_axes: dict[str, int | None]  # Each input's replica axis, if any.

  def epoch_chunks(
      self, epoch: int, steps_per_dispatch: int, start: int = 0, every: int = 0
  ) -> Iterator[tuple[dict[str, jax.Array], int]]:
    """(inputs, number of steps) of each dispatch of `epoch` from its step
    `start` on, on the grid of dispatch_sizes."""

  def device_batch(
      self, inputs: dict[str, jax.Array], index: jax.Array, step: jax.Array
  ) -> dict[str, jax.Array]:
    """This device's batch ('images', normalized; 'labels'; with label noise
    'flipped') for the `index`-th step of the dispatch, global step
    `step`; runs inside shard_map on one replica's view of the inputs."""


class EvalFeeder(Protocol):
  """How evaluation reads the test split: groups of batches laid out as
  EVAL_INPUT_SPECS, padded examples marked by 'valid'."""

  def groups(self) -> Iterator[dict[str, jax.Array]]:
    """Yields the test split as [batches, batch, ...] arrays."""


def dispatch_sizes(
    steps_per_epoch: int,
    steps_per_dispatch: int,
    start: int = 0,
    every: int = 0,
) -> list[int]:
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


def local_eval_batch_size(config: ml_collections.ConfigDict) -> int:
  """Per-process evaluation batch, rounded up to a multiple of its devices."""
  devices = jax.local_device_count()
  return -(-config.eval_batch_size // devices) * devices


def max_over_processes(value: int) -> int:
  return int(np.max(multihost_utils.process_allgather(np.int64(value))))


# Evaluation inputs are [batches, batch, ...], each batch split over devices.
EVAL_INPUT_SPECS = {
    'images': P(None, AXIS),
    'labels': P(None, AXIS),
    'valid': P(None, AXIS),
}
