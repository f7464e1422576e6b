"""What the pipeline knows of a dataset (`DatasetSpec`), a split of it in
host memory (`Split`), and the checks shared by the datasets read from the
user's files as released (`data_file`, `DataFileError`)."""

from collections.abc import Callable
import dataclasses
import pathlib
from typing import Any

import ml_collections
import numpy as np

from configuration import config_util
from input_pipeline import graphs
import tasks

INPUT_KINDS = ('images', 'features', 'tokens', 'graphs')


@dataclasses.dataclass
class Split:
  """This process's share of a split, on the host."""

  # The inputs: uint8 [n, h, w, c] images, float32 [n, d] features, int32
  # [n, max_length] token ids (raw texts, or sentences as tuples of words,
  # only while `sources` reads them) or int16 [n, record] graphs.
  images: np.ndarray
  # int32 [n]; int8 [n, tasks] for a multi-label set; float32 [n] targets
  # for a regression; int32 [n, max_length] tags for a tagging set (tuples
  # of tags while `sources` reads them).
  labels: np.ndarray
  # Which labels label noise replaced (see add_label_noise); None if none.
  flipped: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.labels)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What the pipeline needs to know about a dataset.

  `inputs` is one of INPUT_KINDS: 'images' are stored as uint8 and
  normalized on device to (x / 255 - mean) / std per channel; 'features'
  (MNIST-1D, heartbeats) are stored as float32, already scaled; 'tokens'
  are texts stored as int32 word ids (see `text`), 0 for padding; 'graphs'
  are int16 records (see `graphs`) laid out as `graph_layout` says. `task`
  says what is predicted (see `tasks`); `num_classes` is the network's
  number of outputs (classes, tags, binary tasks for a multi-label set, or
  targets for a regression). `keys` are the config keys this dataset alone
  reads (a generated set's sizes). `reader` (config, split) -> the whole
  'train' or 'test' Split (or 'validation' if `validation_split`), for a
  dataset read from files or generated on this machine rather than through
  TFDS.
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
  reader: Callable[[ml_collections.ConfigDict, str], Split] | None = None
  # The (input, label) features of a TFDS set without supervised keys.
  tfds_features: tuple[str, str] | None = None
  # Released with a validation split of its own (validation_fraction then
  # stays 0).
  validation_split: bool = False
  # Graph datasets: their records' layout (None until the config's budgets
  # are known, sources.dataset_spec).
  graph_layout: graphs.Layout | None = None
  # Where the user gets the files a `reader` reads (shown when one is
  # missing).
  download: str = ''

  @property
  def is_image(self) -> bool:
    return self.inputs == 'images'

  @property
  def tfds(self) -> bool:
    """Read through TFDS (rather than from files or generated)."""
    return self.reader is None


def fixed_subset(count: int, fraction: float, seed: int) -> np.ndarray:
  """Whether each of `count` examples is among the round(fraction * count)
  drawn with `seed` (a fixed seed, not a run's: every run of a dataset
  draws the same)."""
  chosen = np.random.default_rng(seed).permutation(count)[
      : round(fraction * count)
  ]
  subset = np.zeros(count, bool)
  subset[chosen] = True
  return subset


class DataFileError(config_util.ConfigError):
  """A dataset file is missing or not in its released format."""


def data_file(
    config: ml_collections.ConfigDict, name: str, download: str
) -> pathlib.Path:
  """The file `name` of `config.data_dir`; DataFileError if it is absent,
  saying where to get it."""
  if not config.data_dir:
    raise DataFileError(
        f'{config.dataset} is read from files in data_dir; set '
        f'--config.data_dir=DIR to the directory holding {name} ({download})'
    )
  path = pathlib.Path(config.data_dir).expanduser() / name
  if not path.is_file():
    raise DataFileError(
        f'{config.dataset} needs {path}, which does not exist ({download})'
    )
  return path


def malformed(path: Any, line: int, expected: str, got: str) -> DataFileError:
  """The one-line error of a file's `line` (1-based) not being `expected`."""
  return DataFileError(
      f'{path}, line {line}: expected {expected}, got {got[:80]!r}'
  )
