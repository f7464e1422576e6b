"""The echoes of a failed checkpoint restore. When one array of a checkpoint
does not read, Orbax raises at once and closes its event loop; the reads
still under way end later and report, each in its own way. `ignore()`
makes them DEBUG log lines instead of tracebacks on the console (the
restore's one-line warning says what happened), leaving every other
error's report as it was. A restore calls it before its first read, since
an echo may come from another thread before the failure reaches the
restoring code."""

import logging as logging_lib
import sys
import threading
import traceback
from typing import Any

from absl import logging


def _raised_in_orbax(error: BaseException | None) -> bool:
  """Whether `error` was raised by Orbax's code (its innermost frame)."""
  frames = traceback.extract_tb(error.__traceback__) if error else []
  return bool(frames) and '/orbax/' in frames[-1].filename


class _AbandonedReads(logging_lib.Filter):
  """The echoes of the reads of a restore that failed. When one array of a
  checkpoint does not read, Orbax raises at once and closes its event loop;
  the reads still under way end later and report, each in its own way:
  'Event loop is closed' from TensorStore's callbacks (as an unraisable
  exception, or printed through sys.excepthook or threading.excepthook,
  depending on the thread it ends in), their coroutine's error when it is
  collected (Orbax turns GeneratorExit into an Exception), and asyncio's
  'exception was never retrieved' for their futures."""

  @staticmethod
  def closed_loop(error: BaseException | None) -> bool:
    """Whether `error` is asyncio's refusal to schedule on a closed loop."""
    return isinstance(error, RuntimeError) and str(error) == (
        'Event loop is closed'
    )

  @staticmethod
  def is_echo(unraisable: Any) -> bool:
    """For sys.unraisablehook's argument."""
    code = getattr(unraisable.object, 'cr_code', None)
    return (
        code is not None and '/orbax/' in code.co_filename
    ) or _AbandonedReads.closed_loop(unraisable.exc_value)

  def filter(self, record: logging_lib.LogRecord) -> bool:
    """For the asyncio and concurrent.futures loggers: drops their report
    of an unretrieved read, or of a callback refused by the closed loop."""
    error = record.exc_info[1] if record.exc_info else None
    return not (
        self.closed_loop(error)
        or (
            'never retrieved' in record.getMessage() and _raised_in_orbax(error)
        )
    )


def ignore() -> None:
  """From now on, the echoes of a failed restore's reads (_AbandonedReads)
  are logged at DEBUG instead of as tracebacks; any other exception that
  cannot be raised is reported as before."""
  previous = sys.unraisablehook
  if getattr(previous, 'ignores_abandoned_reads', False):
    return

  def hook(unraisable):
    if _AbandonedReads.is_echo(unraisable):
      logging.debug(
          'Ignored after a failed restore: %s: %s',
          unraisable.exc_type.__name__,
          unraisable.exc_value,
      )
    else:
      previous(unraisable)

  hook.ignores_abandoned_reads = True
  sys.unraisablehook = hook
  for logger in ('asyncio', 'concurrent.futures'):
    logging_lib.getLogger(logger).addFilter(_AbandonedReads())
  previous_excepthook = sys.excepthook

  def excepthook(kind, error, trace):
    if _AbandonedReads.closed_loop(error):
      logging.debug('Ignored after a failed restore: %s', error)
    else:
      previous_excepthook(kind, error, trace)

  sys.excepthook = excepthook
  previous_thread_hook = threading.excepthook

  def thread_hook(arguments):
    if _AbandonedReads.closed_loop(arguments.exc_value):
      logging.debug('Ignored after a failed restore: %s', arguments.exc_value)
    else:
      previous_thread_hook(arguments)

  threading.excepthook = thread_hook
