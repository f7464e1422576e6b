"""A sweep's run as a SLURM job: its resources (`SlurmSettings`), what each
task runs (`RunJob`: the run's main.py command, stopped and requeued on
preemption or at the time limit, see slurm.py), and its submission,
recorded in the run's directory (`slurm_job.json`, submitit's files in
`slurm/`)."""

from collections.abc import Mapping, Sequence
import dataclasses
import datetime
import json
import pathlib
import shlex
import signal
import subprocess
import threading
import time
from typing import Any

import submitit

from runs import outcomes
from runs.outcomes import LOG_NAME
from sweeps.plan import REPO
from sweeps.plan import Run
from sweeps.plan import SweepError

JOB_FILE = 'slurm_job.json'
SUBMITIT_DIR = 'slurm'
# After main.py has stopped on a signal, how long a task waits for SLURM to
# end the job (SLURM's KillWait is 30 s by default) before giving up and
# reporting the run as stopped.
STOPPED_GRACE_SECONDS = 600


@dataclasses.dataclass(frozen=True)
class SlurmSettings:
  """The resources of each run's job (sbatch options)."""

  partition: str | None = None
  # Time limit in minutes; a run that needs longer is requeued from its
  # checkpoint up to `max_timeouts` times.
  time: int = 60
  nodes: int = 1
  # GPUs per node; the job has one task per GPU unless tasks_per_node says
  # otherwise (e.g. several CPU processes per node).
  gpus_per_node: int = 0
  tasks_per_node: int | None = None
  cpus_per_task: int | None = None
  account: str | None = None
  # Seconds of warning (SIGUSR2) before the time limit, for the checkpoint.
  signal_delay_s: int = 120
  max_timeouts: int = 3
  # Any other sbatch options, e.g. {'qos': 'high', 'constraint': 'a100'}.
  options: Mapping[str, str] = dataclasses.field(default_factory=dict)

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> 'SlurmSettings':
    """From the sweep config's 'slurm' field updated with the flags given;
    raises SweepError on an unknown field or a bad value."""
    fields = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
      raise SweepError(
          f'unknown SLURM setting {unknown[0]!r}; expected one '
          f'of {", ".join(sorted(fields))}'
      )
    settings = cls(**values)
    for name in ('time', 'nodes', 'signal_delay_s'):
      if getattr(settings, name) < 1:
        raise SweepError(
            f'the SLURM setting {name} must be >= 1, got '
            f'{getattr(settings, name)}'
        )
    if settings.tasks_per_node is not None and settings.tasks_per_node < 1:
      raise SweepError('the SLURM setting tasks_per_node must be >= 1')
    if settings.gpus_per_node < 0 or settings.max_timeouts < 0:
      raise SweepError(
          'the SLURM settings gpus_per_node and max_timeouts ' 'must be >= 0'
      )
    if settings.signal_delay_s >= 60 * settings.time:
      raise SweepError(
          f'signal_delay_s={settings.signal_delay_s} leaves no '
          f'time to train in a {settings.time}-minute job'
      )
    return settings

  def executor_parameters(self) -> dict[str, Any]:
    """submitit.SlurmExecutor.update_parameters arguments."""
    parameters = dict(
        time=self.time,
        nodes=self.nodes,
        ntasks_per_node=self.tasks_per_node or max(self.gpus_per_node, 1),
        signal_delay_s=self.signal_delay_s,
        stderr_to_stdout=True,
        # The job imports this module to run RunJob, wherever sbatch was
        # called from.
        setup=[
            f'export PYTHONPATH={shlex.quote(str(REPO))}'
            '${PYTHONPATH:+:$PYTHONPATH}'
        ],
        additional_parameters=dict(self.options),
    )
    optional = dict(
        partition=self.partition,
        account=self.account,
        cpus_per_task=self.cpus_per_task,
        gpus_per_node=self.gpus_per_node or None,
    )
    parameters.update({k: v for k, v in optional.items() if v is not None})
    return parameters


def _now() -> str:
  return datetime.datetime.now().isoformat(timespec='milliseconds')


class RunJob(submitit.helpers.Checkpointable):
  """What each task of a run's job executes: the run's main.py command."""

  def __init__(self, command: Sequence[str], log_path: str):
    self.command = list(command)
    self.log_path = log_path
    self._process: subprocess.Popen | None = None
    self._returncode: int | None = None

  def __call__(self) -> int:
    """Runs main.py to its end; returns its exit code."""
    environment = submitit.JobEnvironment()
    task = environment.global_rank
    log_path = pathlib.Path(self.log_path)
    if task:
      log_path = log_path.with_name(f'train.task{task}.log')
    job = f'SLURM job {environment.job_id} task {task}'
    with log_path.open('a') as log:
      log.write(f'=== {job} started at {_now()}: {shlex.join(self.command)}\n')
      log.flush()
      self._process = subprocess.Popen(
          self.command,
          stdout=log,
          stderr=subprocess.STDOUT,
          stdin=subprocess.DEVNULL,
      )
      # A thread reaps main.py so that this (main) thread only sleeps: the
      # signal handler that calls checkpoint() runs here, and must not wait
      # inside Popen.wait, which holds a lock.
      threading.Thread(target=self._reap, daemon=True).start()
      self._sleep_until_main_ends()
      log.write(
          f'=== {job} finished at {_now()}: exit code ' f'{self._returncode}\n'
      )
    if self._returncode == outcomes.EXIT_STOPPED:
      # main.py stopped on a signal from SLURM: a requeue, a cancellation or
      # a preemption, which ends this job in moments (and a requeued job
      # runs this again). Returning now would record a result, as if the
      # run had ended.
      time.sleep(STOPPED_GRACE_SECONDS)
    return self._returncode

  def _reap(self) -> None:
    self._returncode = self._process.wait()

  def _sleep_until_main_ends(self) -> None:
    while self._returncode is None:
      time.sleep(0.2)

  def checkpoint(self) -> submitit.helpers.DelayedSubmission:
    """Called by submitit in task 0 when the job is about to be preempted or
    reach its time limit: stops main.py, which saves a checkpoint of the
    current step, and returns the same command for the requeued job."""
    if self._process is not None and self._returncode is None:
      # main.py may have been signalled already; it ignores a repeat.
      self._process.send_signal(signal.SIGTERM)
      self._sleep_until_main_ends()
    return submitit.helpers.DelayedSubmission(
        RunJob(self.command, self.log_path)
    )


def _job_file(run: Run) -> pathlib.Path:
  return run.workdir / JOB_FILE


def recorded_job(run: Run) -> submitit.SlurmJob | None:
  """Task 0 of the run's newest job, as recorded when it was submitted."""
  try:
    record = json.loads(_job_file(run).read_text())
  except FileNotFoundError:
    return None
  return submitit.SlurmJob(
      folder=run.workdir / SUBMITIT_DIR, job_id=str(record['job_id'])
  )


def submit(run: Run, settings: SlurmSettings) -> submitit.SlurmJob:
  """Submits the run as a job and records its id in the run's directory."""
  run.workdir.mkdir(parents=True, exist_ok=True)
  executor = submitit.SlurmExecutor(
      folder=run.workdir / SUBMITIT_DIR, max_num_timeout=settings.max_timeouts
  )
  executor.update_parameters(
      job_name=f'sweep:{run.name}'[:200], **settings.executor_parameters()
  )
  job = executor.submit(RunJob(run.command, str(run.workdir / LOG_NAME)))
  # Task 0 (JAX process 0) writes the run's files; its result is the run's.
  if job.num_tasks > 1:
    job = job.task(0)
  path = _job_file(run)
  earlier = []
  if path.exists():
    old = json.loads(path.read_text())
    earlier = [*old.get('earlier_job_ids', []), old['job_id']]
  record = {
      'job_id': job.job_id,
      'submitted': _now(),
      'command': run.command,
      'earlier_job_ids': earlier,
  }
  # Atomically: a status command reading it never sees half a file.
  partial = path.with_name(path.name + '.tmp')
  partial.write_text(json.dumps(record, indent=2) + '\n')
  partial.replace(path)
  return job
