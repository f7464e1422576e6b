"""What the entry points (main.py, sweep.py, analyze.py) share: exit codes,
user paths, config files and flags read with one-line errors, and the
signals that ask a run to stop."""

from collections.abc import Callable, Mapping, Sequence
import fcntl
import os
import signal
import struct
import sys
import termios
import time
from typing import NoReturn

from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from configuration import config_util
from runs import outcomes

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


def fail(message: str, now: bool = False) -> NoReturn:
  """Ends the process with a one-line `error: ...` (outcomes.EXIT_ERROR).

  With `now`, without Python's shutdown (atexit handlers, garbage
  collection, joining threads): for a failure whose library threads would
  otherwise print more after the line. Nothing of a run depends on them:
  its files are written, or atomically not, before.
  """
  if now:
    sys.stdout.flush()
    sys.stderr.flush()
    # Those threads may still be printing the same failure: from here on
    # the process's own output goes nowhere, and the line is written to a
    # copy of the descriptor, so that it stays the last line.
    stderr = os.dup(sys.stderr.fileno())
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
      os.dup2(devnull, stream.fileno())
    # A thread's write already under way (blocked on a full pipe, say) still
    # goes to the old descriptor: let it land first. Flushing waits for a
    # write that holds the stream's lock; then, if the output is a pipe,
    # the reader draining it lets any blocked writer through.
    for stream in (sys.stdout, sys.stderr):
      stream.flush()
    _wait_until_drained(stderr)
    os.write(stderr, f'error: {message}\n'.encode())
    os._exit(outcomes.EXIT_ERROR)  # pylint: disable=protected-access
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.exit(outcomes.EXIT_ERROR)


def _wait_until_drained(fd: int, timeout: float = 1.0) -> None:
  """Waits (at most `timeout` seconds) until the pipe or terminal `fd`
  holds no unread output, then a moment more for a writer just woken; at
  once for a file, where writes do not wait."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    try:
      unread = struct.unpack(
          'i', fcntl.ioctl(fd, termios.FIONREAD, b'\0\0\0\0')
      )[0]
    except OSError:
      return
    if not unread:
      break
    time.sleep(0.001)
  time.sleep(0.01)


class _ClosedPipeTolerant:
  """sys.stdout that, once the reader has gone (`report.py DIR | head`),
  sends the rest of the output nowhere instead of raising BrokenPipeError,
  so that the program still finishes what it writes to files."""

  def __init__(self, stream):
    self._stream = stream

  def _discard(self) -> None:
    # The descriptor now writes to /dev/null: the stream's buffered text and
    # its flush at exit go there too, without an error.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, self._stream.fileno())
    os.close(devnull)

  def write(self, text: str) -> int:
    try:
      return self._stream.write(text)
    except BrokenPipeError:
      self._discard()
      return len(text)

  def flush(self) -> None:
    try:
      self._stream.flush()
    except BrokenPipeError:
      self._discard()

  def __getattr__(self, name: str):
    return getattr(self._stream, name)


def tolerate_closed_stdout() -> None:
  """Lets the program go on when the program reading its output stops
  (a pipe into `head`): see _ClosedPipeTolerant."""
  if not isinstance(sys.stdout, _ClosedPipeTolerant):
    sys.stdout = _ClosedPipeTolerant(sys.stdout)


def absolute_path(path: str, what: str) -> str:
  """A user's path resolved once, against the current directory.

  Every path a user gives is made absolute at the entry point, so that no
  library (Orbax among them) re-interprets it from another directory.
  """
  if not path or not path.strip():
    raise config_util.ConfigError(f'{what} is empty; give a directory')
  return os.path.abspath(os.path.expanduser(path))


def _config_overrides(argv: Sequence[str], name: str) -> dict[str, str]:
  """The --NAME.KEY=VALUE overrides on a command line, by KEY."""
  prefix = f'--{name}.'
  overrides = {}
  for arg in argv:
    if arg.startswith(prefix):
      key, _, value = arg[len(prefix) :].partition('=')
      overrides[key] = value
  return overrides


def _flag_value(argv: Sequence[str], name: str) -> str | None:
  """The value of --NAME=VALUE on a command line (the last one wins)."""
  values = [
      arg.partition('=')[2] for arg in argv if arg.startswith(f'--{name}=')
  ]
  return values[-1] if values else None


def check_override_keys(
    overrides: Mapping[str, str], config: ml_collections.ConfigDict
) -> None:
  """Refuses an override of a key that `config` does not have."""
  for key in overrides:
    error = config_util.unknown_key_error(key, config)
    config_util.require(error is None, f'--config.{key}: {error}')


def flag_error_line(error: Exception) -> str:
  """A flag's error in one line. ml_collections reports a config file that
  fails as 'flag --config=F: Error whilst parsing config file:' followed by
  the traceback: the first line and the exception's (the last) are kept."""
  lines = [
      line.strip() for line in str(error).strip().splitlines() if line.strip()
  ]
  if len(lines) > 1 and 'Traceback' in str(error):
    return f'{lines[0]} {lines[-1]}'
  return lines[0] if lines else type(error).__name__


def load_config_file(
    config_file: str, overrides: Mapping[str, str], complete: bool = True
) -> ml_collections.ConfigDict:
  """The config that `--config=config_file --config.KEY=VALUE ...` gives.

  Uses the parser of main.py (ml_collections' config_flags), so a value it
  could not parse is reported here. Raises ConfigError for a missing file,
  an unknown key, an unparsable value or, if `complete`, a value the config
  file requires (config_dict.placeholder(T, required=True)) and did not get.
  """
  path = config_file.split(':')[0]
  config_util.require(
      os.path.isfile(path), f'config file {path} does not exist'
  )

  def parse(overrides):
    argv = [
        'main.py',
        f'--config={config_file}',
        *(f'--config.{key}={value}' for key, value in overrides.items()),
    ]
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file(
        'config', config_file, flag_values=flag_values, sys_argv=argv
    )
    try:
      flag_values(argv)
    except flags.Error as e:
      raise config_util.ConfigError(flag_error_line(e)) from e
    except SyntaxError as e:  # The config file itself.
      raise config_util.ConfigError(
          f'config file {e.filename or path} does not parse: line '
          f'{e.lineno}: {e.msg}'
      ) from e
    except Exception as e:  # pylint: disable=broad-except
      # Raised by the config file's code, e.g. get_config('forty') for an
      # argument it reads as a number.
      lines = str(e).strip().splitlines()
      raise config_util.ConfigError(
          f'config file {config_file} fails: {type(e).__name__}'
          f'{": " + lines[0] if lines else ""}'
      ) from e
    return flag_values.config

  check_override_keys(overrides, parse({}))
  config = parse(overrides)
  # Imported here: configs.default is what every config builds on, but the
  # other entry points' flags do not need it.
  from configs import default  # pylint: disable=g-import-not-at-top

  missing = (
      config_util.missing_values(config, default.get_config())
      if complete
      else []
  )
  config_util.require(
      not missing,
      f'config file {path} needs {", ".join(missing)}: give it '
      f"as the config's argument (--config={path}:VALUE) or as "
      f'--config.{missing[0] if missing else ""}=VALUE',
  )
  return config


def flags_parser(
    reference: Callable[[Sequence[str]], ml_collections.ConfigDict | None],
) -> Callable[[list[str]], list[str]]:
  """A flags parser for absl.app.run that fails with one line, not a
  traceback, on an unknown config key (naming the closest ones), an
  unparsable value or a missing config file.

  Args:
    reference: the command line -> the config its --config.KEY overrides
      must exist in (None: --config names a file that load_config_file
      checks).
  """

  def parse(argv: list[str]) -> list[str]:
    try:
      overrides = _config_overrides(argv, 'config')
      config = reference(argv)
      if config is None:
        config_file = _flag_value(argv, 'config')
        if config_file:
          load_config_file(config_file, overrides)
      else:
        check_override_keys(overrides, config)
      return flags.FLAGS(argv)
    except config_util.ConfigError as e:
      fail(str(e))
    except flags.Error as e:
      fail(flag_error_line(e))

  return parse


def refuse_unknown_overrides(
    argv: Sequence[str], config: ml_collections.ConfigDict
) -> None:
  """Fails with one line if a --config.KEY override names a key `config`
  lacks: for an entry point whose config flag reads the overrides as it is
  defined (DEFINE_config_dict), before flags_parser could check them."""
  try:
    check_override_keys(_config_overrides(argv, 'config'), config)
  except config_util.ConfigError as e:
    fail(str(e))


class StopRequest:
  """Turns SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 into a request to stop.

  SLURM and Kubernetes send SIGTERM (or a signal of the job's choice: SIGUSR1
  here, SIGUSR2 in jobs submitted with submitit) some time before they kill
  a job; Ctrl-C sends SIGINT. The first such signal sets `requested`: the
  training loop finishes the dispatch under way, checkpoints and exits with
  outcomes.EXIT_STOPPED. A second Ctrl-C
  aborts at once (the user insists); repeated SIGTERMs are ignored, as the
  process is already stopping.
  """

  def __init__(self):
    self.signal: int | None = None
    for sig in STOP_SIGNALS:
      signal.signal(sig, self._handle)

  def _handle(self, signum: int, frame) -> None:
    del frame
    if self.signal is not None and signum == signal.SIGINT:
      signal.signal(signal.SIGINT, signal.SIG_DFL)
      os.kill(os.getpid(), signal.SIGINT)
      return
    if self.signal is None:
      self.signal = signum
      logging.warning(
          'Received %s: stopping after the current dispatch, '
          'with a checkpoint.',
          signal.Signals(signum).name,
      )

  def requested(self) -> bool:
    return self.signal is not None
