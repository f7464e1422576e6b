"""Running a sweep's runs as SLURM jobs, through submitit.

Each run is one job of `nodes` nodes with one task per GPU (one per node
without GPUs, or `tasks_per_node`). Every task runs the run's main.py
command, which finds the other tasks in SLURM's environment and joins them
into one JAX run
(runtime/distributed.py). In the run's directory, `slurm_job.json` names its job
(and the earlier ones), `slurm/` holds submitit's sbatch script, pickles
and logs, and main.py's output is appended to `train.log` (task 0; task
i > 0 writes `train.task<i>.log`).

Preemption and time limits. submitit asks SLURM for SIGUSR2
`signal_delay_s` seconds before a job is killed at its time limit, and
SLURM sends SIGTERM (then SIGUSR2, in submitit's convention) to a job it
preempts. main.py checkpoints the current step on either signal and exits
75; on SIGUSR2 submitit calls slurm_jobs.RunJob.checkpoint, which waits
for that, and requeues the job, which then resumes from the checkpoint:
the run ends as if it had not been interrupted. A job that SLURM itself
requeues (`scontrol requeue`) or cancels (`scancel`) gets SIGTERM, so it
keeps its checkpoint too.

Job states come from `squeue`, which answers on clusters without
accounting storage (sacct does not); a job's result file, written by
submitit when main.py has ended, tells a finished job even after SLURM has
forgotten it.
"""

from collections.abc import Sequence
import datetime
import re
import signal
import subprocess
import time

import submitit

from configuration import cli
from runs.outcomes import error_line
from runs.outcomes import LOG_NAME
from sweeps import slurm_jobs
from sweeps.local import FAILED
from sweeps.local import OK
from sweeps.local import Outcome
from sweeps.local import PENDING
from sweeps.local import RUNNING
from sweeps.local import SKIPPED
from sweeps.local import STATUS_OF_EXIT_CODE
from sweeps.local import SUBMITTED
from sweeps.plan import is_finished
from sweeps.plan import Run

# SLURM states of a job that has not ended (a preempted job may be
# requeued); any other state, or no state at all, means it has ended.
ACTIVE_STATES = frozenset(
    {
        'PENDING',
        'RUNNING',
        'REQUEUED',
        'REQUEUE_FED',
        'REQUEUE_HOLD',
        'CONFIGURING',
        'COMPLETING',
        'RESIZING',
        'SUSPENDED',
        'STAGE_OUT',
        'SIGNALING',
        'PREEMPTED',
    }
)
# How long a job must look ended, without a result, before it counts as
# ended: longer than a requeue takes (see _Watch).
ENDED_CONFIRM_SECONDS = 30


def job_states(job_ids: Sequence[str]) -> dict[str, str] | None:
  """Each job's SLURM state ('' for one SLURM no longer lists), or None when
  squeue cannot answer (then nothing is known)."""
  if not job_ids:
    return {}
  try:
    listing = subprocess.run(
        [
            'squeue',
            '--noheader',
            '--states=all',
            '--format=%i %T',
            f'--jobs={",".join(job_ids)}',
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
  except (OSError, subprocess.TimeoutExpired):
    return None
  # squeue refuses a list whose jobs it has all forgotten.
  if listing.returncode and 'Invalid job id' not in listing.stderr:
    return None
  states = dict.fromkeys(job_ids, '')
  for line in listing.stdout.splitlines():
    job_id, _, state = line.strip().partition(' ')
    if job_id in states:
      states[job_id] = state.strip().upper()
  return states


def _log_after_last_start(run: Run, job_id: str) -> tuple[str, float]:
  """train.log's output of the job's last attempt and the job's seconds."""
  path = run.workdir / LOG_NAME
  text = path.read_text(errors='replace') if path.exists() else ''
  header = re.compile(
      rf'^=== SLURM job {re.escape(job_id)} task 0 '
      r'(started|finished) at (\S+):',
      re.MULTILINE,
  )
  marks = list(header.finditer(text))
  starts = [m for m in marks if m.group(1) == 'started']
  output = text[starts[-1].end() :] if starts else text
  seconds = 0.0
  if starts and marks[-1].group(1) == 'finished':
    first = datetime.datetime.fromisoformat(starts[0].group(2))
    last = datetime.datetime.fromisoformat(marks[-1].group(2))
    seconds = (last - first).total_seconds()
  return output, seconds


def ended_outcome(
    run: Run, job: submitit.SlurmJob, state: str | None
) -> Outcome:
  """How a run whose job has ended went: from submitit's result file (the
  exit code of main.py in task 0), or SLURM's state when there is none."""
  output, seconds = _log_after_last_start(run, job.job_id)
  if not job.paths.result_pickle.exists():
    return Outcome(
        run,
        FAILED,
        seconds,
        f'SLURM job {job.job_id} ended ({state or "gone"}) before '
        f'main.py did; see {job.paths.stdout}',
    )
  try:
    returncode = job.result()
  except Exception as e:  # submitit re-raises what the job raised.
    return Outcome(
        run,
        FAILED,
        seconds,
        f'SLURM job {job.job_id}: {str(e).splitlines()[0]}',
    )
  status = STATUS_OF_EXIT_CODE.get(returncode, FAILED)
  error = '' if status == OK else error_line(output, returncode)
  return Outcome(run, status, seconds, error)


class _Watch:
  """Tells a job that has ended from one still queued or running.

  A job that has a result file has ended. One without is active while
  squeue lists it in an active state, or cannot answer. A job in an ended
  state without a result file may be in the midst of a requeue (SLURM
  passes a requeued job through its ending states for a moment), so it
  counts as ended only when it has looked so for `confirm_seconds`.
  """

  def __init__(self, confirm_seconds: float):
    self.confirm_seconds = confirm_seconds
    self.states: dict[str, str] | None = {}
    self._ended_since: dict[str, float] = {}

  def look(self, jobs: Sequence[submitit.SlurmJob]) -> None:
    """Asks squeue about every job at once."""
    self.states = job_states([job.job_id for job in jobs])

  def state(self, job: submitit.SlurmJob) -> str | None:
    return None if self.states is None else self.states.get(job.job_id)

  def ended(self, job: submitit.SlurmJob) -> bool | None:
    """True (ended), False (active) or None (looks ended, not yet for
    confirm_seconds)."""
    if job.paths.result_pickle.exists():
      return True
    state = self.state(job)
    if state is None or state in ACTIVE_STATES:
      self._ended_since.pop(job.job_id, None)
      return False
    since = self._ended_since.setdefault(job.job_id, time.monotonic())
    return True if time.monotonic() - since >= self.confirm_seconds else None


class _StopWaiting:
  """A stop signal (cli.STOP_SIGNALS) ends the wait; the jobs go on."""

  def __init__(self):
    self.requested = False
    self._previous = {
        sig: signal.signal(sig, self._handle) for sig in cli.STOP_SIGNALS
    }

  def _handle(self, signum: int, frame) -> None:
    del frame
    print(
        f'{signal.Signals(signum).name}: no longer waiting; the SLURM jobs '
        'go on',
        flush=True,
    )
    self.requested = True

  def restore(self) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def run_all(
    runs: Sequence[Run],
    settings: slurm_jobs.SlurmSettings,
    detach: bool,
    poll_seconds: float,
) -> tuple[list[Outcome], bool]:
  """Submits every run that is neither finished nor has a job in the queue;
  unless `detach`, waits for them all. Returns the outcomes and whether the
  wait was cut short by a signal."""
  results = {
      run.name: Outcome(run, SKIPPED) for run in runs if is_finished(run)
  }
  todo = [run for run in runs if run.name not in results]
  watch = _Watch(ENDED_CONFIRM_SECONDS)
  recorded = {run.name: slurm_jobs.recorded_job(run) for run in todo}
  recorded = {name: job for name, job in recorded.items() if job}
  watch.look(list(recorded.values()))
  if None in (watch.ended(job) for job in recorded.values()):
    time.sleep(ENDED_CONFIRM_SECONDS)
    watch.look(list(recorded.values()))
  jobs, submitted = {}, set()
  for run in todo:
    job = recorded.get(run.name)
    if job is not None and watch.ended(job) is not True:
      jobs[run.name] = job
    else:
      jobs[run.name] = slurm_jobs.submit(run, settings)
      submitted.add(run.name)
  print(
      f'{len(runs)} runs: {len(results)} finished already, '
      f'{len(submitted)} submitted to SLURM, '
      f'{len(jobs) - len(submitted)} already queued.',
      flush=True,
  )
  stop = None if detach else _StopWaiting()
  try:
    while jobs:
      watch.look(list(jobs.values()))
      for run in todo:
        job = jobs.get(run.name)
        if job is None:
          continue
        state = watch.state(job)
        if watch.ended(job):
          outcome = results[run.name] = ended_outcome(run, job, state)
          del jobs[run.name]
          print(
              f'[{len(results)}/{len(runs)}] {outcome.status:8} '
              f'{outcome.seconds:7.1f}s  {run.name} (SLURM job '
              f'{job.job_id})',
              flush=True,
          )
        elif detach or stop.requested:
          status = (
              SUBMITTED
              if run.name in submitted
              else RUNNING
              if state in ('RUNNING', 'COMPLETING')
              else PENDING
          )
          results[run.name] = Outcome(
              run,
              status,
              error=(
                  f'SLURM job {job.job_id}' + (f' {state}' if state else '')
              ),
          )
          del jobs[run.name]
      if jobs:
        time.sleep(poll_seconds)
  finally:
    if stop is not None:
      stop.restore()
  return [results[run.name] for run in runs], bool(stop and stop.requested)
