"""A run's directory: its lock, config.json, checkpoints and summaries.

Layout of a workdir (every path below is relative to it):

  .lock                 held (flock) by the process training the run
  config.json           the resolved config, written once training can start
  checkpoints/<step>/   Orbax checkpoints: the state and the run's progress
  checkpoints_corrupt/  checkpoints that failed to restore, moved aside
  summary.json          the results (per replica: replica_<r>/summary.json)
  events.out.tfevents.* TensorBoard (per replica: replica_<r>/)

Nothing here ever deletes a file it did not write.
"""

from collections.abc import Iterator
import contextlib
import errno
import fcntl
import json
import math
import os
import re
from typing import Any

from absl import logging
from etils import epath
import flax
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from configs import default
from configuration import config_util
from runs import abandoned_reads

PyTree = Any


def require_absolute(path: str | os.PathLike[str], what: str) -> epath.Path:
  """`path` as an epath; entry points resolve user paths, libraries don't."""
  path = epath.Path(path)
  if not path.is_absolute():
    raise ValueError(
        f'{what} must be an absolute path (entry points resolve '
        f'relative ones), got {path}'
    )
  return path


def run_and_replica(path: epath.Path) -> tuple[epath.Path, int | None]:
  """(the run, the replica) that `path` names: a run's directory (replica
  None), or the directory of one replica of a run of several,
  RUN/replica_<r> (replica_dirs)."""
  match = re.fullmatch(r'replica_(\d+)', path.name)
  if (
      match
      and not (path / 'config.json').exists()
      and (path.parent / 'config.json').exists()
  ):
    return path.parent, int(match.group(1))
  return path, None


def replica_dirs(workdir: epath.Path, num_replicas: int) -> list[epath.Path]:
  """Where each replica's TensorBoard events and summary.json go."""
  if num_replicas == 1:
    return [workdir]
  return [workdir / f'replica_{r}' for r in range(num_replicas)]


def _finite_or_none(tree: Any) -> Any:
  """`tree` with every non-finite float replaced by None (JSON has no NaN)."""
  if isinstance(tree, dict):
    return {k: _finite_or_none(v) for k, v in tree.items()}
  if isinstance(tree, (list, tuple)):
    return [_finite_or_none(v) for v in tree]
  if isinstance(tree, float) and not math.isfinite(tree):
    return None
  return tree


def as_json(content: Any) -> Any:
  """`content` as a JSON file gives it back: tuples become lists and a
  non-finite number null (JSON has no NaN)."""
  return json.loads(json.dumps(_finite_or_none(content), allow_nan=False))


def write_json(path: epath.Path, content: dict[str, Any]) -> None:
  """Writes as_json(content) atomically: a reader never sees a half-written
  file, nor the invalid `NaN` that json.dumps writes by default."""
  tmp = path.parent / (path.name + '.tmp')
  tmp.write_text(json.dumps(as_json(content), indent=2) + '\n')
  tmp.replace(path)


def read_json(path: epath.Path) -> Any:
  """The content of a JSON file, or None if it is missing or unreadable."""
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    return None


def comparable(
    config: ml_collections.ConfigDict | dict[str, Any],
) -> dict[str, Any]:
  """A config as its config.json holds it (JSON turns tuples into lists)."""
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  return as_json(config)


def load_config(workdir: epath.Path) -> ml_collections.ConfigDict:
  """The config a run was started with (its workdir's config.json)."""
  path = workdir / 'config.json'
  if not path.exists():
    raise config_util.ConfigError(
        f'{workdir} is not a run directory: it has ' 'no config.json'
    )
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def changed_keys(
    workdir: epath.Path, config: ml_collections.ConfigDict
) -> list[str]:
  """Top-level keys whose value differs from the run's config.json ([] when
  there is none)."""
  old = read_json(workdir / 'config.json')
  if old is None:
    return []
  old = default.completed(old)
  new = comparable(config)
  return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def check_workdir(
    workdir: epath.Path, config: ml_collections.ConfigDict
) -> None:
  """Refuses a workdir that is (or lies under) a file, or that holds a run
  whose config differs in a key that changes training (only
  default.TRAJECTORY_NEUTRAL_KEYS and num_epochs may change;
  validate.check_extension checks the latter)."""
  for parent in (workdir, *workdir.parents):
    if parent.exists():
      config_util.require(
          parent.is_dir(),
          f'workdir {workdir} exists and is not a directory'
          if parent == workdir
          else f'workdir {workdir} lies under {parent}, '
          'which is a file, not a directory',
      )
      break
  refused = [
      k
      for k in changed_keys(workdir, config)
      if k not in default.TRAJECTORY_NEUTRAL_KEYS + ('num_epochs',)
  ]
  config_util.require(
      not refused,
      f'workdir {workdir} holds a run with a different config '
      f'(differs in: {", ".join(refused)}); resume it with the same config '
      f'or choose a new workdir (a resumed run may change only num_epochs '
      f'and {", ".join(default.TRAJECTORY_NEUTRAL_KEYS)})',
  )


@contextlib.contextmanager
def locked(workdir: epath.Path) -> Iterator[None]:
  """Holds the workdir's lock (process 0 makes the workdir and locks it)
  while the run trains; a workdir this run made and then refused before
  training started (no config.json) is removed again."""
  lock, created = None, not workdir.exists()
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    lock = WorkdirLock(workdir)
  try:
    yield
  finally:
    if lock:
      lock.release(
          remove_workdir=created and not (workdir / 'config.json').exists()
      )


class WorkdirLock:
  """An exclusive lock on a workdir, held until the process exits.

  flock(2) locks belong to the open file: the kernel releases them when the
  process dies, however it dies (kill -9 included), so a lock is never
  stale. The lock file is never deleted (deleting it would let two
  processes lock two different files of the same name).
  """

  def __init__(self, workdir: epath.Path):
    self.path = workdir / '.lock'
    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(self._fd, 64, 0).decode(errors='replace').strip()
      os.close(self._fd)
      raise config_util.ConfigError(
          f'workdir {workdir} is in use by another run (process '
          f'{holder or "unknown"}); wait for it or stop it first'
      ) from None
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, f'{os.getpid()}\n'.encode(), 0)

  def release(self, remove_workdir: bool = False) -> None:
    """Unlocks; with remove_workdir, also removes the lock file and the
    workdir if nothing else is in it (a run refused before it started)."""
    if remove_workdir:
      self.path.unlink()
      if not any(self.path.parent.iterdir()):
        self.path.parent.rmdir()
    os.close(self._fd)


# Fields of the saved state added after checkpoints had been written without
# them: left out while None, so that older checkpoints keep restoring.
ADDED_FIELDS = ('sam_state',)


def _saved_fields(state_dict: dict[str, Any]) -> dict[str, Any]:
  """The fields of a state dict that a checkpoint holds."""
  return {
      key: value
      for key, value in state_dict.items()
      if not (key in ADDED_FIELDS and value is None)
  }


def _first_reason(error: BaseException) -> str:
  """The first line of the innermost cause of `error`: for a damaged
  checkpoint, TensorStore's (which file, what is wrong) rather than Orbax's
  wrapper, which prints a whole TensorStore spec."""
  while error.__cause__ is not None:
    error = error.__cause__
  lines = str(error).strip().splitlines()
  # TensorStore appends the JSON spec of every store involved.
  line = re.sub(
      r" \[tensorstore_spec(\[\d+\])?='[^']*'\]", '', lines[0] if lines else ''
  )
  return f'{type(error).__name__}: {line}'[:1000]


class Checkpointer:
  """Orbax checkpoints of the state plus the run's progress (JSON).

  Orbax writes each checkpoint to a temporary directory and renames it when
  complete, so an interrupted save never shadows the previous checkpoint.
  A checkpoint that does not restore (a truncated file, a missing metadata
  file) is skipped with a warning and, unless read-only, moved to
  checkpoints_corrupt/ so that later saves are not shadowed by it.
  """

  def __init__(
      self,
      workdir: epath.Path,
      checkpoints_to_keep: int,
      read_only: bool = False,
  ):
    self._directory = workdir / 'checkpoints'
    self._corrupt = workdir / 'checkpoints_corrupt'
    self._read_only = read_only
    self._manager = ocp.CheckpointManager(
        self._directory,
        item_names=('state', 'progress'),
        # The directory is made by the first save, not here: a run refused
        # before training starts leaves nothing behind.
        options=ocp.CheckpointManagerOptions(
            max_to_keep=checkpoints_to_keep, create=False, read_only=read_only
        ),
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, state: PyTree, progress: dict[str, Any]) -> None:
    # Replicas share the step counter.
    step = int(np.ravel(jax.device_get(state.step))[0])
    if jax.process_index() == 0:
      self._directory.mkdir(parents=True, exist_ok=True)
    try:
      self._manager.save(
          step,
          args=ocp.args.Composite(
              state=ocp.args.StandardSave(
                  _saved_fields(flax.serialization.to_state_dict(state))
              ),
              # A copy: the save completes in the background, while the
              # caller goes on changing `progress`.
              progress=ocp.args.JsonSave(as_json(progress)),
          ),
          force=True,
      )
    except Exception as e:  # pylint: disable=broad-except
      raise self._write_error(e) from e

  def restore(self, target: PyTree) -> tuple[PyTree, dict[str, Any]] | None:
    """The newest checkpoint that restores onto `target`'s shapes and
    shardings, as (state, progress); None if no checkpoint restores."""
    abstract = jax.tree.map(
        ocp.utils.to_shape_dtype_struct,
        _saved_fields(flax.serialization.to_state_dict(target)),
    )
    # Before the first read, not once one fails: a failed restore's echoes
    # may come from another thread before its error reaches the except
    # clause below.
    abandoned_reads.ignore()
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract),
                progress=ocp.args.JsonRestore(),
            ),
        )
      except Exception as e:  # pylint: disable=broad-except
        # Orbax and TensorStore raise many types for a damaged checkpoint.
        moved = self._set_aside(step)
        logging.warning(
            'Skipping checkpoint %s, which does not restore%s: %s',
            self._directory / str(step),
            f' (moved to {moved})' if moved else '',
            _first_reason(e),
        )
        continue
      saved = dict(restored.state)
      for field in ADDED_FIELDS:
        saved.setdefault(field, None)
      return (
          flax.serialization.from_state_dict(target, saved),
          restored.progress,
      )
    return None

  def _set_aside(self, step: int) -> epath.Path | None:
    """Moves a damaged checkpoint to checkpoints_corrupt/ (never deletes);
    returns where to (None: left in place, by a reader or another
    process)."""
    if self._read_only or jax.process_index() > 0:
      return None
    self._corrupt.mkdir(parents=True, exist_ok=True)
    destination = self._corrupt / str(step)
    suffix = 1
    while destination.exists():
      destination = self._corrupt / f'{step}.{suffix}'
      suffix += 1
    (self._directory / str(step)).rename(destination)
    self._manager.reload()
    return destination

  def wait(self) -> None:
    """Waits for the background save (a failed one raises, as in close)."""
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      raise self._write_error(e) from e

  def close(self) -> None:
    """Waits for the background save and closes; a failed save raises (as
    _write_error's OSError) only once both are done, since closing waits
    for the save again and would raise it again, unwrapped."""
    errors = []
    for step in (self._manager.wait_until_finished, self._manager.close):
      try:
        step()
      except Exception as e:  # pylint: disable=broad-except
        errors.append(e)
    if errors:
      raise self._write_error(errors[0]) from errors[0]

  def _write_error(self, error: Exception) -> OSError:
    """A failed (possibly background) save as an OSError naming the
    directory and the operating system's reason: Orbax reports a full or
    read-only disk as a long TensorStore ValueError."""
    text = str(error)
    for code in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
      if os.strerror(code) in text:
        return OSError(code, os.strerror(code), str(self._directory))
    lines = text.strip().splitlines()
    return OSError(
        errno.EIO,
        f'{type(error).__name__}: ' f'{lines[0][:300] if lines else ""}',
        str(self._directory),
    )
