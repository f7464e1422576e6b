"""MIT-BIH arrhythmia heartbeats (Moody & Mark, 2001) in the CSV form of
Kachuee et al. (2018) that most work on them uses, read as released:
`mitbih_train.csv` (87,554 beats) and `mitbih_test.csv` (21,892) in
data_dir, from https://www.kaggle.com/datasets/shayanfazeli/heartbeat.

Each line is one beat: 187 comma-separated values (the ECG resampled to
125 Hz, scaled to [0, 1], zero-padded at the end) and then its class as a
number, 0 to 4 (AAMI's N, S, V, F, Q). There is no header. The values are
the network's inputs as they are ('features').
"""

import functools
import pathlib

import ml_collections
import numpy as np

from input_pipeline import spec as spec_lib

LENGTH = 187
NUM_CLASSES = 5
FILES = {'train': 'mitbih_train.csv', 'test': 'mitbih_test.csv'}
DOWNLOAD = (
    'download https://www.kaggle.com/datasets/shayanfazeli/heartbeat and '
    'unzip its mitbih_train.csv and mitbih_test.csv into data_dir'
)


@functools.cache
def _read_file(path: pathlib.Path, stamp: int) -> tuple[np.ndarray, np.ndarray]:
  del stamp  # The modification time: an edited file is read again.
  try:
    table = np.loadtxt(path, delimiter=',', dtype=np.float32, ndmin=2)
  except ValueError:
    table = None
  if table is None or table.shape[1] != LENGTH + 1:
    _raise_first_bad_line(path)
  labels = table[:, -1]
  bad = np.flatnonzero(
      (labels != np.round(labels)) | (labels < 0) | (labels >= NUM_CLASSES)
  )
  if bad.size:
    _raise_first_bad_line(path, first_label=int(bad[0]))
  return table[:, :-1], labels.astype(np.int32)


def _raise_first_bad_line(path: pathlib.Path, first_label: int = -1) -> None:
  """Raises the one-line error of the first line that is not a beat."""
  expected = (
      f'{LENGTH} numbers then a class in 0..{NUM_CLASSES - 1}, '
      f'comma-separated'
  )
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if number - 1 == first_label:
        raise spec_lib.malformed(path, number, expected, line.strip())
      fields = line.strip().split(',')
      try:
        [float(x) for x in fields]
      except ValueError:
        raise spec_lib.malformed(path, number, expected, line.strip()) from None
      if len(fields) != LENGTH + 1:
        raise spec_lib.malformed(
            path, number, expected, f'{len(fields)} fields: {line.strip()}'
        )
  raise spec_lib.DataFileError(f'{path} holds no heartbeat: {expected}')


def read(config: ml_collections.ConfigDict, split: str) -> spec_lib.Split:
  """The whole 'train' or 'test' split: float32 [n, 187] beats, classes."""
  path = spec_lib.data_file(config, FILES[split], DOWNLOAD)
  return spec_lib.Split(*_read_file(path, path.stat().st_mtime_ns))
