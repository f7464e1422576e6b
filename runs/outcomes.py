"""How a run ends or stands: the statuses summary.json records, main.py's
exit codes, and what a run directory without a summary says of its run
(sweep.py and report.py read them all). Imports nothing of JAX."""

import errno
import fcntl
import os
import pathlib
import re

# summary.json's "status" (a summary without one predates it: finished).
FINISHED = 'finished'
DIVERGED = 'diverged'  # Its loss became non-finite.
INCOMPLETE = 'incomplete'  # A replica stopped because another one diverged.

# main.py's exit codes.
EXIT_OK = 0  # Finished (now or before).
EXIT_ERROR = 1  # Bad input or a failure, with a one-line `error: ...`;
# nothing of the run is lost.
EXIT_DIVERGED = 3  # The loss became non-finite; the last finite checkpoint is
# kept and summary.json says "status": "diverged".
EXIT_STOPPED = 75  # Stopped by SIGTERM, SIGINT, SIGUSR1 or SIGUSR2 after
# saving a checkpoint of the current step; the same command resumes the run
# exactly (75 is EX_TEMPFAIL of sysexits.h: "try again later").


class Stopped(Exception):
  """Training stopped on request after saving a checkpoint; running the same
  command again resumes it exactly."""


# The run's console output, in its directory when sweep.py trains it (each
# attempt after a header line `=== sweep.py started at ...` or `=== SLURM
# job N task 0 started at ...`).
LOG_NAME = 'train.log'
_ATTEMPT = re.compile(r'^=== .* started at \S+:.*$', re.MULTILINE)


def error_line(output: str, returncode: int) -> str:
  """main.py's one-line `error: ...` or `stopped: ...`, else the last line
  it printed."""
  lines = [
      line.strip()
      for line in output.splitlines()
      if line.strip() and not line.startswith('=== ')
  ]
  errors = [line for line in lines if line.startswith(('error: ', 'stopped: '))]
  if errors:
    return errors[-1]
  if returncode < 0:
    return f'killed by signal {-returncode}'
  return lines[-1] if lines else f'exit code {returncode}'


def lock_holder(workdir: pathlib.Path) -> str | None:
  """The process that holds the run's workdir lock (rundir.WorkdirLock: the
  run is training now), as its lock file names it; None if none does."""
  try:
    fd = os.open(workdir / '.lock', os.O_RDONLY)
  except OSError:
    return None
  try:
    # A shared lock is refused while the run holds its exclusive one.
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    fcntl.flock(fd, fcntl.LOCK_UN)
    return None
  except OSError as e:
    if e.errno not in (errno.EAGAIN, errno.EACCES):
      return None
    return os.pread(fd, 64, 0).decode(errors='replace').strip() or 'unknown'
  finally:
    os.close(fd)


def unfinished_reason(workdir: pathlib.Path) -> str:
  """Why a run directory (one with config.json) has no summary: 'running',
  'failed: <its error line>' (as its last attempt in train.log ended),
  'stopped at step N with a checkpoint', or 'not trained'."""
  holder = lock_holder(workdir)
  if holder is not None:
    return f'running (process {holder})'
  log = workdir / LOG_NAME
  text = log.read_text(errors='replace') if log.is_file() else ''
  attempts = list(_ATTEMPT.finditer(text))
  last = text[attempts[-1].end() :] if attempts else text
  ended = re.search(
      r'^=== .* finished at \S+: exit code (-?\d+)', last, re.MULTILINE
  )
  returncode = int(ended.group(1)) if ended else None
  if returncode not in (None, EXIT_OK, EXIT_STOPPED):
    return f'failed: {error_line(last, returncode)}'
  steps = [
      int(p.name)
      for p in (workdir / 'checkpoints').glob('*')
      if p.name.isdigit()
  ]
  if steps:
    return (
        f'stopped at step {max(steps)} with a checkpoint (the same '
        'command resumes it)'
    )
  return 'not trained'
