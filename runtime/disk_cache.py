"""Per-user caches of arrays on disk, which spare later processes work that
always gives the same result (generating a dataset, reading a subset).

Each cache is a directory of `.npz` files named by a digest of what
determines their content; a file is written by a rename, whole or not at
all, and a damaged or unreadable file is made again. Deleting a cache
directory is always safe. The caches live under ROOT unless an environment
variable names another directory, or 'off'.
"""

from collections.abc import Callable
import contextlib
import hashlib
import json
import os
import tempfile
from typing import Any
import zipfile

from absl import logging
import numpy as np

OFF = 'off'
ROOT = os.path.join(
    os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'),
    'sam-overparam',
)


def directory(variable: str, name: str) -> str | None:
  """The cache directory: the environment's `variable`, else ROOT/`name`;
  None when it is 'off'."""
  setting = os.environ.get(variable) or os.path.join(ROOT, name)
  return None if setting == OFF else os.path.expanduser(setting)


def digest(fields: dict[str, Any]) -> str:
  """A file name for the content that `fields` (JSON values) determine."""
  return hashlib.sha256(
      json.dumps(fields, sort_keys=True).encode()
  ).hexdigest()[:32]


def cached_arrays(
    path: str | None, key: str, make: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
  """The arrays `make()` returns, from `path`/`key`.npz if it holds them
  (else made and stored); `path` None: always made, nothing stored."""
  if path is None:
    return make()
  filename = os.path.join(path, f'{key}.npz')
  try:
    with np.load(filename, allow_pickle=False) as stored:
      return {name: stored[name] for name in stored.files}
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
    pass  # Absent or damaged: made again.
  arrays = make()
  partial = None
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path, suffix='.tmp', delete=False
    ) as f:
      partial = f.name
      np.savez(f, **arrays)
    os.replace(partial, filename)
  except OSError as e:  # A full disk or a read-only home: only slower.
    logging.warning('not cached in %s: %s', path, e)
    if partial:
      with contextlib.suppress(OSError):
        os.unlink(partial)
  return arrays
