"""A real single-node SLURM cluster for the tests: munged, slurmctld and
slurmd from Debian's slurm-wlm and munge packages, started in a temporary
directory on free ports and stopped afterwards.

It needs root (SlurmUser=root, as on a one-machine cluster) and the
packages (`apt-get install slurm-wlm munge`; .ci/run installs them).
"""

import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import time

DAEMONS = ('munged', 'slurmctld', 'slurmd')


def unavailable_reason() -> str | None:
  """Why no test cluster can start here, or None."""
  missing = [
      name for name in (*DAEMONS, 'sbatch') if shutil.which(name) is None
  ]
  if missing:
    return (
        f'SLURM is not installed ({", ".join(missing)} missing; '
        'apt-get install slurm-wlm munge)'
    )
  if os.geteuid() != 0:
    return 'a test SLURM cluster runs its daemons as root'
  return None


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _config(directory: pathlib.Path) -> str:
  host = socket.gethostname().split('.')[0]
  return (
      '\n'.join(
          [
              'ClusterName=test',
              f'SlurmctldHost={host}',
              'SlurmUser=root',
              'AuthType=auth/munge',
              f'AuthInfo=socket={directory / "munge.socket"}',
              'ProctrackType=proctrack/linuxproc',
              'TaskPlugin=task/none',
              'MpiDefault=none',
              'SelectType=select/cons_tres',
              'SelectTypeParameters=CR_Core',
              'AccountingStorageType=accounting_storage/none',
              'JobCompType=jobcomp/none',
              'JobAcctGatherType=jobacct_gather/none',
              # Jobs get 10 s between SIGTERM and SIGKILL (the default is 30 s).
              'KillWait=10',
              'ReturnToService=2',
              f'SlurmctldPort={_free_port()}',
              f'SlurmdPort={_free_port()}',
              f'StateSaveLocation={directory / "state"}',
              f'SlurmdSpoolDir={directory / "spool"}',
              f'SlurmctldPidFile={directory / "slurmctld.pid"}',
              f'SlurmdPidFile={directory / "slurmd.pid"}',
              f'SlurmctldLogFile={directory / "slurmctld.log"}',
              f'SlurmdLogFile={directory / "slurmd.log"}',
              f'NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} '
              'State=UNKNOWN',
              'PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE '
              'State=UP',
          ]
      )
      + '\n'
  )


@contextlib.contextmanager
def running_cluster(directory: pathlib.Path):
  """Starts the cluster; yields the environment in which sbatch, squeue and
  scontrol (and so submitit) reach it. Stops the daemons, and with them any
  job left, at the end."""
  for sub in ('state', 'spool'):
    (directory / sub).mkdir(parents=True)
  conf = directory / 'slurm.conf'
  conf.write_text(_config(directory))
  env = dict(os.environ, SLURM_CONF=str(conf))
  commands = [
      [
          'munged',
          '--foreground',
          '--force',
          f'--socket={directory / "munge.socket"}',
          f'--pid-file={directory / "munged.pid"}',
          f'--log-file={directory / "munged.log"}',
          f'--seed-file={directory / "munged.seed"}',
      ],
      ['slurmctld', '-D', '-f', str(conf)],
      ['slurmd', '-D', '-f', str(conf)],
  ]
  daemons = []
  try:
    for command in commands:
      daemons.append(
          subprocess.Popen(
              command,
              env=env,
              stdin=subprocess.DEVNULL,
              stdout=(directory / f'{command[0]}.out').open('w'),
              stderr=subprocess.STDOUT,
          )
      )
      time.sleep(0.5)
    deadline = time.monotonic() + 60
    while True:
      state = node_state(env)
      if state == 'idle':
        break
      failed = [d.args[0] for d in daemons if d.poll() is not None]
      if failed or time.monotonic() > deadline:
        logs = ''.join(
            path.read_text()[-2000:] for path in sorted(directory.glob('*.log'))
        )
        raise RuntimeError(
            f'the test SLURM cluster did not start (node '
            f'{state!r}, exited: {failed}):\n{logs}'
        )
      time.sleep(0.5)
    yield env
  finally:
    subprocess.run(
        ['scancel', '--full', f'--user={os.getuid()}'],
        env=env,
        capture_output=True,
    )
    for daemon in reversed(daemons):
      daemon.terminate()
      try:
        daemon.wait(timeout=30)
      except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()


def job_state(env: dict[str, str], job_id: str) -> tuple[str, str]:
  """(state, reason) of a job as squeue lists it; ('', '') once it is gone."""
  listing = subprocess.run(
      [
          'squeue',
          '--noheader',
          '--states=all',
          '--format=%T %r',
          f'--jobs={job_id}',
      ],
      env=env,
      capture_output=True,
      text=True,
  ).stdout
  state, _, reason = listing.strip().partition(' ')
  return state, reason


def node_state(env: dict[str, str]) -> str:
  """The node's state: idle, allocated, completing, ..."""
  return subprocess.run(
      ['sinfo', '--noheader', '--format=%T'],
      env=env,
      capture_output=True,
      text=True,
  ).stdout.strip()
