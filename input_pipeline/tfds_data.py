"""Reading a dataset through TFDS: its builder, prepared (downloaded) only
where allowed and possible, with a one-line error naming the directory
searched and the server that cannot be reached (TFDS alone would retry for
minutes), a failed download's partial files removed; the split names each
process reads; TensorFlow kept off the accelerators.
"""

import functools
import shutil
import socket
import urllib.parse

from etils import epath
from etils import epy
import ml_collections

# TFDS (0.3 s to import) only for the datasets it reads: a process training
# on MNIST-1D never imports it, nor TensorFlow.
with epy.lazy_imports():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top


class DatasetUnavailableError(RuntimeError):
  """The dataset is neither in the data directory nor downloadable."""


def train_split_name(config: ml_collections.ConfigDict) -> str:
  if config.num_train_examples:
    return f'train[:{config.num_train_examples}]'
  return 'train'


def process_split(split: str, train: bool):
  # Training drops the remainder so every process takes the same number of
  # steps; evaluation keeps every example (the caller pads and masks).
  return tfds.split_for_jax_process(split, drop_remainder=train)


@functools.cache
def tensorflow_off_accelerators() -> None:
  """Imports TensorFlow, which here only reads data through TFDS, and keeps
  it off the accelerators JAX uses.

  Called before the first TFDS read, not at import time: a process that
  reads no TFDS data, such as analyze.py with a cached analysis subset,
  never imports TensorFlow (about 2.5 s).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.config.set_visible_devices([], 'GPU')


def prepared_builder(
    config: ml_collections.ConfigDict,
) -> 'tfds.core.DatasetBuilder':
  """Returns the TFDS builder, downloading the data if allowed and needed."""
  builder = tfds.builder(config.dataset, data_dir=config.data_dir)
  if builder.is_prepared():
    return builder
  where = (
      f'config.data_dir={config.data_dir!r}'
      if config.data_dir
      else f'the TFDS data directory {tfds.core.constants.DATA_DIR!r}'
      ' (set by TFDS_DATA_DIR)'
  )
  advice = (
      'point config.data_dir or the TFDS_DATA_DIR environment variable '
      'at a TFDS data directory that holds it'
  )
  if not config.download:
    raise DatasetUnavailableError(
        f'dataset {config.dataset!r} is not in {where} and '
        f'config.download is False: {advice}'
    )
  unreachable = _unreachable_host(builder)
  if unreachable:
    raise DatasetUnavailableError(
        f'dataset {config.dataset!r} is not in {where} and is not available '
        f'offline ({unreachable} cannot be reached): {advice}, or download '
        'it where there is a network'
    )
  download_config = tfds.download.DownloadConfig(manual_dir=config.manual_dir)
  data_dir = epath.Path(builder.data_dir_root)
  before = _entries(data_dir)
  try:
    builder.download_and_prepare(download_config=download_config)
  except Exception as e:  # Network, manual-download and permission failures.
    _remove_new_entries(data_dir, before)
    lines = str(e).strip().splitlines()
    raise DatasetUnavailableError(
        f'dataset {config.dataset!r} is not in {where} and could not be '
        f'downloaded ({type(e).__name__}: {lines[0][:300] if lines else ""})'
        f': {advice}'
    ) from e
  return builder


# Seconds to wait for a download server before calling the machine offline
# (TFDS itself retries for minutes).
CONNECT_TIMEOUT = 5.0


def _unreachable_host(builder) -> str | None:
  """The first host the dataset downloads from that does not answer (a
  name that does not resolve, or no connection within CONNECT_TIMEOUT);
  None if all answer or the dataset names none (a manual download)."""
  for url in sorted((builder.url_infos or {}).keys()):
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
      continue
    port = parts.port or (443 if parts.scheme == 'https' else 80)
    try:
      socket.create_connection(
          (parts.hostname, port), timeout=CONNECT_TIMEOUT
      ).close()
    except OSError:
      return parts.hostname
  return None


def _entries(data_dir: epath.Path) -> set[str] | None:
  """The data directory's entries two levels deep (datasets and their
  versions, downloads); None if it does not exist."""
  if not data_dir.exists():
    return None
  return {
      str(p)
      for top in data_dir.iterdir()
      for p in ([top, *top.iterdir()] if top.is_dir() else [top])
  }


def _remove_new_entries(data_dir: epath.Path, before: set[str] | None) -> None:
  """Removes what a failed download added to the data directory (partial
  downloads, an incomplete dataset), and nothing that was there before."""
  if before is None:
    if data_dir.exists():
      shutil.rmtree(data_dir, ignore_errors=True)
    return
  for path in sorted(_entries(data_dir) - before, key=len, reverse=True):
    target = epath.Path(path)
    if str(target.parent) in before or target.parent == data_dir:
      if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
      else:
        target.unlink(missing_ok=True)
