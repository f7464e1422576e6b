"""sweep.py --launcher=slurm on a real single-node SLURM cluster that these
tests start (tests/slurm_cluster.py): runs submitted as jobs through
submitit, --detach and the status command, and jobs that are preempted,
warned of their time limit or requeued, which checkpoint, are requeued and
end bit-equal to an uninterrupted run."""

import json
import re
import subprocess
import sys
import time

import pytest

from sweeps import plan
from sweeps import slurm_jobs
from tests import slurm_cluster
from tests import test_multihost
from tests.conftest import REPO
from tests.test_faults import _env
from tests.test_faults import assert_same_ending
from tests.test_faults import ending
from tests.test_faults import main_py

# The quickstart for 24 epochs (about 8 s of training), with a checkpoint
# every 10 steps: long enough for a signal to arrive mid-run.
RUN_SETTINGS = [
    '--set=num_epochs=24',
    '--set=steps_per_dispatch=4',
    '--set=checkpoint_every_steps=10',
]
SLURM_FLAGS = [
    '--launcher=slurm',
    '--slurm_time=10',
    '--slurm_cpus_per_task=1',
    '--slurm_poll_seconds=0.5',
]


def _main_args(optimizer):
  return [
      '--config=configs/quickstart.py',
      f'--config.optimizer={optimizer}',
      *(f'--config.{s.removeprefix("--set=")}' for s in RUN_SETTINGS),
  ]


def _sweep_args(
    workdir, optimizers, config='configs/quickstart.py', settings=RUN_SETTINGS
):
  return [
      str(REPO / 'sweep.py'),
      f'--workdir={workdir}',
      f'--config={config}',
      f'--sweep=optimizer=[{",".join(optimizers)}]',
      *settings,
      *SLURM_FLAGS,
  ]


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
  reason = slurm_cluster.unavailable_reason()
  if reason:
    pytest.skip(reason)
  with slurm_cluster.running_cluster(tmp_path_factory.mktemp('slurm')) as env:
    yield dict(_env(), SLURM_CONF=env['SLURM_CONF'])


@pytest.fixture(scope='module')
def uninterrupted_sam(tmp_path_factory):
  """The SAM run trained by main.py in one go, on this machine."""
  workdir = tmp_path_factory.mktemp('slurm_reference') / 'run'
  code, output = main_py(workdir, *_main_args('sam'))
  assert code == 0, output[-3000:]
  return ending(workdir)


def _sweep(cluster, workdir, optimizers, *extra):
  return subprocess.run(
      [sys.executable, *_sweep_args(workdir, optimizers), *extra],
      cwd=REPO,
      env=cluster,
      capture_output=True,
      text=True,
      timeout=600,
  )


def _job_id(run_dir):
  return json.loads((run_dir / 'slurm_job.json').read_text())['job_id']


def _statuses(output):
  """{run name: status} from the table that sweep.py prints."""
  return dict(
      reversed(m.groups())
      for m in re.finditer(
          r'^(\w[\w ]*?) +[\d.]* +(optimizer=\w+)', output, re.MULTILINE
      )
  )


@pytest.mark.slow
def test_a_detached_sweep_is_reported_then_waited_for_then_skipped(
    cluster, tmp_path, uninterrupted_sam
):
  workdir = tmp_path / 'sweep'
  first = _sweep(cluster, workdir, ['sgd', 'sam'], '--detach')
  assert first.returncode == 0, first.stderr[-3000:]
  assert _statuses(first.stdout) == {
      'optimizer=sgd': 'submitted',
      'optimizer=sam': 'submitted',
  }
  job_ids = {name: _job_id(workdir / name) for name in _statuses(first.stdout)}

  # The same command, detached again, finds both jobs queued, running or
  # done, and submits nothing.
  second = _sweep(cluster, workdir, ['sgd', 'sam'], '--detach')
  assert second.returncode == 0, second.stderr[-3000:]
  assert set(_statuses(second.stdout).values()) <= {
      'pending',
      'running',
      'ok',
      'skipped',
  }
  assert {name: _job_id(workdir / name) for name in job_ids} == job_ids

  # Without --detach it waits for them.
  third = _sweep(cluster, workdir, ['sgd', 'sam'])
  assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
  assert set(_statuses(third.stdout).values()) <= {'ok', 'skipped'}
  for name, job_id in job_ids.items():
    log = (workdir / name / 'train.log').read_text()
    assert f'=== SLURM job {job_id} task 0 started' in log
    assert (workdir / name / 'slurm' / f'{job_id}_submitted.pkl').exists()
  # A SLURM job trains exactly what main.py trains on this machine.
  assert_same_ending(workdir / 'optimizer=sam', uninterrupted_sam)

  fourth = _sweep(cluster, workdir, ['sgd', 'sam'])
  assert fourth.returncode == 0
  assert set(_statuses(fourth.stdout).values()) == {'skipped'}


def _scancel_signal(env, job_id, name):
  subprocess.run(['scancel', f'--signal={name}', job_id], env=env, check=True)


# What SLURM does to a job: preemption (SIGTERM, then submitit's SIGUSR2),
# the warning before its time limit (SIGUSR2 only), and `scontrol requeue`
# by an administrator (SIGTERM, then SIGKILL after KillWait).
INTERRUPTIONS = {
    'preempted': lambda env, job: [
        _scancel_signal(env, job, 'TERM'),
        _scancel_signal(env, job, 'USR2'),
    ],
    'time_limit_warning': lambda env, job: _scancel_signal(env, job, 'USR2'),
    'scontrol_requeue': lambda env, job: subprocess.run(
        ['scontrol', 'requeue', job], env=env, check=True
    ),
}


def _interrupted_sam_job(cluster, tmp_path, interruption, sweep_args, began):
  """Runs a SAM sweep of one job through SLURM, interrupts the job once
  its train.log matches `began`, lets SLURM requeue it, and waits for the
  sweep's end; the run's directory."""
  workdir = tmp_path / 'sweep'
  run_dir, output = workdir / 'optimizer=sam', tmp_path / 'sweep.out'
  waiting = subprocess.Popen(
      [sys.executable, *sweep_args(workdir)],
      cwd=REPO,
      env=cluster,
      stdout=output.open('w'),
      stderr=subprocess.STDOUT,
  )
  try:
    deadline = time.monotonic() + 300
    while not re.search(began, _read(run_dir / 'train.log')):
      assert waiting.poll() is None, output.read_text()[-3000:]
      assert time.monotonic() < deadline, _read(run_dir / 'train.log')
      time.sleep(0.1)
    job_id = _job_id(run_dir)
    INTERRUPTIONS[interruption](cluster, job_id)

    # SLURM holds a requeued job (BeginTime) until the node has cleaned up
    # after it (a new start within the second of the requeue is refused);
    # an administrator's `StartTime=now` lifts the hold once it has.
    while (
        slurm_cluster.job_state(cluster, job_id) != ('PENDING', 'BeginTime')
        or slurm_cluster.node_state(cluster) != 'idle'
    ):
      assert waiting.poll() is None, output.read_text()[-3000:]
      assert time.monotonic() < deadline, slurm_cluster.job_state(
          cluster, job_id
      )
      time.sleep(0.2)
    time.sleep(2)
    subprocess.run(
        ['scontrol', 'update', f'JobId={job_id}', 'StartTime=now'],
        env=cluster,
        check=True,
    )
    assert waiting.wait(timeout=300) == 0, output.read_text()[-3000:]
  finally:
    waiting.kill()
  log = (run_dir / 'train.log').read_text()
  assert len(re.findall(rf'=== SLURM job {job_id} task 0 started', log)) == 2
  assert 'Resumed from the checkpoint' in log
  return run_dir


@pytest.mark.slow
@pytest.mark.parametrize('interruption', list(INTERRUPTIONS))
def test_an_interrupted_job_is_requeued_and_ends_as_if_uninterrupted(
    cluster, tmp_path, uninterrupted_sam, interruption
):
  run_dir = _interrupted_sam_job(
      cluster,
      tmp_path,
      interruption,
      lambda workdir: _sweep_args(workdir, ['sam']),
      r'epoch 2/24',
  )
  log = (run_dir / 'train.log').read_text()
  assert re.search(r'^stopped: stopped at step \d+', log, re.MULTILINE), log
  assert_same_ending(run_dir, uninterrupted_sam)


@pytest.mark.slow
def test_an_agents_preempted_job_is_requeued_and_ends_as_if_uninterrupted(
    cluster, tmp_path
):
  # CartPole's PPO with SAM (30 short epochs): the checkpoint holds the
  # environments' states, so the requeued job plays on the same episodes
  # and ends with the history main.py trains here in one go.
  config = 'configs/cartpole_ppo.py'
  code, output = main_py(
      tmp_path / 'one_go', f'--config={config}', '--config.optimizer=sam'
  )
  assert code == 0, output[-3000:]
  run_dir = _interrupted_sam_job(
      cluster,
      tmp_path,
      'preempted',
      lambda workdir: _sweep_args(workdir, ['sam'], config, settings=[]),
      r'epoch 2/30',
  )
  log = (run_dir / 'train.log').read_text()
  assert re.search(r'^stopped: at the end of epoch \d+', log, re.MULTILINE)
  summary, expected = (
      json.loads((d / 'summary.json').read_text())
      for d in (run_dir, tmp_path / 'one_go')
  )
  assert summary['status'] == 'finished'
  assert summary['history'] == expected['history']
  assert summary['final_return'] == expected['final_return']


@pytest.mark.slow
def test_a_job_of_two_tasks_is_one_jax_run_of_their_devices(cluster, tmp_path):
  # Two tasks of 2 virtual CPU devices each find each other through SLURM's
  # environment (jax.distributed, gloo) and train as 1 process x 4 devices.
  env = dict(cluster, XLA_FLAGS='--xla_force_host_platform_device_count=2')
  workdir = tmp_path / 'sweep'
  result = subprocess.run(
      [
          sys.executable,
          str(REPO / 'sweep.py'),
          f'--workdir={workdir}',
          '--config=configs/quickstart.py',
          '--sweep=optimizer=[sam]',
          *(
              f'--set={a.removeprefix("--config.")}'
              for a in test_multihost.RUN
              if a.startswith('--config.')
          ),
          '--slurm_tasks_per_node=2',
          *SLURM_FLAGS,
      ],
      cwd=REPO,
      env=env,
      capture_output=True,
      text=True,
      timeout=600,
  )
  run_dir = workdir / 'optimizer=sam'
  assert result.returncode == 0, (
      result.stdout[-2000:] + _read(run_dir / 'train.log')[-3000:]
  )
  assert 'JAX process 1 of 2' in _read(run_dir / 'train.task1.log')
  test_multihost.one_process(tmp_path / 'one', '--config.optimizer=sam')
  test_multihost.assert_close_trajectories(tmp_path / 'one', run_dir)
  summary = json.loads((run_dir / 'summary.json').read_text())
  assert summary['num_devices'] == 4


def _read(path):
  return path.read_text() if path.exists() else ''


def test_slurm_settings_come_from_the_sweep_config_and_flags(tmp_path):
  # Flags override the sweep config's fields; --slurm_option adds sbatch
  # options; bad settings are refused before anything is submitted.
  config = tmp_path / 'sweep_config.py'
  config.write_text(
      'def get_sweep():\n'
      "  return {'config': 'configs/quickstart.py',\n"
      "          'grid': {'optimizer': ['sgd', 'sam']},\n"
      "          'slurm': {'partition': 'gpu', 'time': 240, 'nodes': 2,\n"
      "                    'gpus_per_node': 4, 'options': {'qos': 'low'}}}\n"
  )
  loaded = plan.load_sweep_config(str(config))
  settings = slurm_jobs.SlurmSettings.from_dict(
      {**loaded.slurm, 'time': 30, 'options': {'qos': 'high'}}
  )
  parameters = settings.executor_parameters()
  assert parameters['partition'] == 'gpu' and parameters['time'] == 30
  assert parameters['nodes'] == 2 and parameters['gpus_per_node'] == 4
  # One task per GPU: each is one JAX process (runtime/distributed.py).
  assert parameters['ntasks_per_node'] == 4
  assert parameters['additional_parameters'] == {'qos': 'high'}
  assert parameters['signal_delay_s'] == 120
  for bad, message in [
      ({'partitions': 'x'}, 'unknown SLURM setting ' "'partitions'"),
      ({'time': 0}, 'time must be >= 1'),
      ({'time': 1, 'signal_delay_s': 90}, 'leaves no time to train'),
  ]:
    with pytest.raises(plan.SweepError, match=message):
      slurm_jobs.SlurmSettings.from_dict(bad)


def test_a_bad_slurm_flag_is_one_line_and_submits_nothing(tmp_path):
  result = subprocess.run(
      [
          sys.executable,
          *_sweep_args(tmp_path / 'sweep', ['sgd']),
          '--slurm_option=qos',
      ],
      cwd=REPO,
      env=_env(),
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "error: --slurm_option='qos': expected NAME=VALUE, e.g. qos=high"
  )
  assert not (tmp_path / 'sweep').exists()
