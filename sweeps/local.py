"""Running a sweep's runs on this machine, and how runs ended: each run is a
main.py process whose output goes to train.log in its directory; the status
table and the sweep's exit code are shared with the SLURM launcher."""

import collections
from collections.abc import Mapping, Sequence
import concurrent.futures
import dataclasses
import datetime
import os
import shlex
import signal
import subprocess
import threading
import time

from configuration import cli
from runs import outcomes
from sweeps.plan import is_finished
from sweeps.plan import Run

# How a run ended (its main.py exit code), that it did not run, or, for a
# SLURM job not waited for, where it stands.
OK, FAILED, DIVERGED, STOPPED = 'ok', 'failed', 'diverged', 'stopped'
SKIPPED, NOT_STARTED = 'skipped', 'not started'
SUBMITTED, PENDING, RUNNING = 'submitted', 'pending', 'running'
IN_USE = 'in use'  # Trained by another process (another sweep), for now.
STATUSES = (
    OK,
    FAILED,
    DIVERGED,
    STOPPED,
    SKIPPED,
    NOT_STARTED,
    SUBMITTED,
    PENDING,
    RUNNING,
    IN_USE,
)
STATUS_OF_EXIT_CODE = {
    0: OK,
    outcomes.EXIT_DIVERGED: DIVERGED,
    outcomes.EXIT_STOPPED: STOPPED,
}


@dataclasses.dataclass(frozen=True)
class Outcome:
  """How a run ended or stands: one of STATUSES."""

  run: Run
  status: str
  seconds: float = 0.0
  error: str = ''


def _now() -> str:
  return datetime.datetime.now().isoformat(timespec='milliseconds')


class Children:
  """The main.py processes a sweep is running, so that a stop reaches them.

  On SIGTERM, SIGINT, SIGUSR1 or SIGUSR2 the sweep starts no new run and
  sends SIGTERM to each running one, which checkpoints and exits (main.py's exit
  code 75); the sweep then reports them as stopped. (On Ctrl-C, the
  terminal has also sent SIGINT to them; main.py treats the two as one
  request.)
  """

  def __init__(self):
    self._lock = threading.Lock()
    self._running: set[subprocess.Popen] = set()
    self.stopping = False

  def start(self, command: list[str], **kwargs) -> subprocess.Popen | None:
    """Popen(command), unless the sweep is stopping (then None)."""
    with self._lock:
      if self.stopping:
        return None
      process = subprocess.Popen(command, **kwargs)
      self._running.add(process)
      return process

  def finished(self, process: subprocess.Popen) -> None:
    with self._lock:
      self._running.discard(process)

  def stop(self, signum: int, frame) -> None:
    """Signal handler: stop every run, start none."""
    del frame
    with self._lock:
      if not self.stopping:
        print(
            f'{signal.Signals(signum).name}: stopping the running runs '
            '(each saves a checkpoint)...',
            flush=True,
        )
      self.stopping = True
      for process in self._running:
        process.send_signal(signal.SIGTERM)


def _in_use_error(output: str) -> bool:
  """Whether main.py refused the run because another process trains it."""
  return 'error: workdir ' in output and 'is in use by another run' in output


def execute(run: Run, env: Mapping[str, str], children: Children) -> Outcome:
  """Trains one run in a main.py process, appending its output to train.log;
  IN_USE, without starting it, if another process (another sweep) is
  training it."""
  holder = outcomes.lock_holder(run.workdir)
  if holder is not None:
    return Outcome(run, IN_USE, error=f'in use by process {holder}')
  if is_finished(run):  # Since the sweep started, by another process.
    return Outcome(run, SKIPPED, error='finished by another process')
  run.workdir.mkdir(parents=True, exist_ok=True)
  log_path = run.workdir / outcomes.LOG_NAME
  start = time.perf_counter()
  output = []  # This process's own lines (another sweep may share the log).
  with log_path.open('a') as log:
    log.write(f'=== sweep.py started at {_now()}: {shlex.join(run.command)}\n')
    log.flush()
    process = children.start(
        run.command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    if process is None:
      log.write('=== sweep.py did not start it: the sweep was stopped\n')
      return Outcome(run, NOT_STARTED)
    for line in process.stdout:  # Into train.log as it comes.
      log.write(line)
      log.flush()
      output.append(line)
    returncode = process.wait()
    children.finished(process)
    log.write(f'=== sweep.py finished at {_now()}: exit code {returncode}\n')
  seconds = time.perf_counter() - start
  status = STATUS_OF_EXIT_CODE.get(returncode, FAILED)
  output = ''.join(output)
  if status == OK:
    # Finished by another process while this one's main.py started.
    if 'already finished its' in output:
      return Outcome(run, SKIPPED, seconds, 'finished already')
    return Outcome(run, OK, seconds)
  if _in_use_error(output):  # Locked between the look above and the start.
    status = IN_USE
  return Outcome(run, status, seconds, outcomes.error_line(output, returncode))


def _after_other_process(
    run: Run,
    env: Mapping[str, str],
    children: Children,
    poll_seconds: float = 2.0,
) -> Outcome:
  """A run another process was training: waits for it to let go, then
  reports it finished (by the other process) or, if that one stopped
  before the end, trains it here."""
  while not children.stopping and outcomes.lock_holder(run.workdir):
    time.sleep(poll_seconds)
  if children.stopping:
    return Outcome(run, NOT_STARTED)
  return execute(run, env, children)


def run_all(runs: Sequence[Run], parallel: int) -> list[Outcome]:
  """Skips finished runs and executes the others, `parallel` at a time.

  SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 stop the running runs (with
  checkpoints) and start no more; the same command resumes.
  """
  results = {
      run.name: Outcome(run, SKIPPED) for run in runs if is_finished(run)
  }
  todo = [run for run in runs if run.name not in results]
  print(
      f'{len(runs)} runs: {len(results)} finished already, {len(todo)} to '
      f'run, {parallel} at a time.',
      flush=True,
  )
  env = dict(os.environ)
  if parallel > 1:
    # By default each JAX process claims 75% of an accelerator's memory up
    # front, so a second run on the same GPU would fail to start.
    env.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')
  children = Children()
  previous = {
      sig: signal.signal(sig, children.stop) for sig in cli.STOP_SIGNALS
  }
  with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
    # A run another sweep is training waits for it; this sweep goes on
    # with the others meanwhile (so two sweeps on one grid share it).
    futures = [pool.submit(execute, run, env, children) for run in todo]
    done = 0
    while futures:
      future = next(concurrent.futures.as_completed(futures))
      futures.remove(future)
      outcome = future.result()
      if outcome.status == IN_USE:
        print(
            f'{outcome.run.name}: {outcome.error}; waiting for it', flush=True
        )
        futures.append(
            pool.submit(_after_other_process, outcome.run, env, children)
        )
        continue
      done += 1
      results[outcome.run.name] = outcome
      print(
          f'[{done}/{len(todo)}] {outcome.status:8} '
          f'{outcome.seconds:7.1f}s  {outcome.run.name}',
          flush=True,
      )
  for sig, handler in previous.items():
    signal.signal(sig, handler)
  return [results[run.name] for run in runs]


def format_table(results: Sequence[Outcome]) -> str:
  """One line per run: status, seconds, name and, if it did not end ok, its
  error; then the count of each status."""
  width = max(len(o.run.name) for o in results)
  lines = [f'{"status":11} {"seconds":>8}  {"run":{width}}  error']
  for o in results:
    seconds = (
        f'{o.seconds:8.1f}'
        if o.status in (OK, FAILED, DIVERGED, STOPPED)
        else f'{"":8}'
    )
    lines.append(
        f'{o.status:11} {seconds}  {o.run.name:{width}}  {o.error}'.rstrip()
    )
  counts = collections.Counter(o.status for o in results)
  lines.append(
      ', '.join(
          f'{counts[s]} {s}'
          for s in STATUSES
          if counts[s] or s in (OK, FAILED, SKIPPED)
      )
  )
  return '\n'.join(lines)


def exit_code(results: Sequence[Outcome]) -> int:
  """1 if a run failed or diverged, else 75 (main.py's) if the sweep was
  stopped before every run ended, else 0 (also when SLURM jobs were left
  running on purpose, with --detach)."""
  statuses = {o.status for o in results}
  if statuses & {FAILED, DIVERGED}:
    return 1
  if statuses & {STOPPED, NOT_STARTED}:
    return outcomes.EXIT_STOPPED
  return 0
