"""Faults done for real to main.py and sweep.py processes, as users and
clusters cause them: relative paths, SIGTERM/SIGINT/SIGUSR1, kill -9 at a
random moment, two launches on one workdir, damaged checkpoints, a full or
read-only disk, a diverging loss, bad input, and extending a finished run.
Wherever a run can go on, its end is compared with an uninterrupted run:
bit-equal on the CPU."""

import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from runs import abandoned_reads
from runs import outcomes
from runs import run_state
from tests.conftest import REPO
from tests.conftest import run_python
from tests.test_analyze import SETTINGS

# The quickstart (MNIST-1D, MLP (300, 100), 31 steps per epoch) for 12
# epochs, in dispatches of 4 steps and with a checkpoint every 10 steps:
# about 4 s of training, long enough to be hit mid-epoch.
FAULT_RUN = [
    '--config=configs/quickstart.py',
    '--config.num_epochs=12',
    '--config.steps_per_dispatch=4',
    '--config.checkpoint_every_steps=10',
]
# Two epochs of a small MLP, for what needs a finished run and no more.
TINY_RUN = [
    '--config=configs/quickstart.py',
    '--config.num_epochs=2',
    '--config.num_neurons=(32,16)',
]
STEPS_PER_EPOCH = 31


def _env():
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  env['XLA_FLAGS'] = '--xla_force_host_platform_device_count=1'
  return env


def start(script, args, log, cwd=REPO):
  """Starts `python script args` in the background, output to `log`."""
  return subprocess.Popen(
      [sys.executable, str(REPO / script), *args],
      cwd=cwd,
      env=_env(),
      stdout=log.open('w'),
      stderr=subprocess.STDOUT,
      stdin=subprocess.DEVNULL,
  )


def wait_for(log, pattern, process, timeout=300):
  """Waits until `pattern` appears in `log` (while `process` runs)."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    text = log.read_text() if log.exists() else ''
    if re.search(pattern, text, re.MULTILINE):
      return text
    assert process.poll() is None, f'exited before {pattern!r}:\n{text}'
    time.sleep(0.05)
  raise AssertionError(f'no {pattern!r} in {timeout}s:\n{log.read_text()}')


def main_py(workdir, *args, cwd=REPO):
  """Runs main.py to its end; returns (exit code, output)."""
  result = subprocess.run(
      [sys.executable, str(REPO / 'main.py'), f'--workdir={workdir}', *args],
      cwd=cwd,
      env=_env(),
      capture_output=True,
      text=True,
      timeout=600,
  )
  return result.returncode, result.stderr


def ending(workdir):
  """What must not depend on how a run was interrupted: its summary (less
  timings) and the final weights, BN statistics and optimizer state."""
  summary = json.loads((workdir / 'summary.json').read_text())
  for key in ('wall_seconds', 'train_examples_per_sec'):
    summary.pop(key)
  for record in summary['history']:
    record.pop('examples_per_sec')
  _, state, _ = run_state.load_checkpoint(str(workdir))
  return summary, [np.asarray(x) for x in jax.tree.leaves(state)]


def assert_same_ending(workdir, reference):
  summary, leaves = ending(workdir)
  expected_summary, expected_leaves = reference
  assert summary == expected_summary
  for a, b in zip(leaves, expected_leaves, strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  """FAULT_RUN trained in one go: (workdir, its ending)."""
  workdir = tmp_path_factory.mktemp('faults') / 'uninterrupted'
  code, output = main_py(workdir, *FAULT_RUN)
  assert code == 0, output[-3000:]
  return workdir, ending(workdir)


@pytest.mark.parametrize(
    'signum',
    [
        signal.SIGTERM,
        pytest.param(signal.SIGINT, marks=pytest.mark.slow),
        pytest.param(signal.SIGUSR1, marks=pytest.mark.slow),
    ],
)
def test_a_signal_checkpoints_the_current_step_and_resuming_is_exact(
    tmp_path, uninterrupted, signum
):
  workdir, log = tmp_path / 'run', tmp_path / 'first.log'
  process = start('main.py', [f'--workdir={workdir}', *FAULT_RUN], log)
  wait_for(log, r'epoch 2/12', process)
  process.send_signal(signum)
  assert process.wait(timeout=120) == outcomes.EXIT_STOPPED
  text = log.read_text()
  assert f'Received {signal.Signals(signum).name}' in text
  stopped = re.search(r'^stopped: stopped at step (\d+) ', text, re.MULTILINE)
  assert stopped, text[-3000:]
  step = int(stopped.group(1))
  assert 2 * STEPS_PER_EPOCH <= step < 12 * STEPS_PER_EPOCH
  # The checkpoint is of the step the process stopped at, mid-epoch or not.
  assert str(step) in os.listdir(workdir / 'checkpoints')
  assert not (workdir / 'summary.json').exists()

  code, output = main_py(workdir, *FAULT_RUN)
  assert code == 0, output[-3000:]
  assert 'Resumed from the checkpoint ' in output
  assert_same_ending(workdir, uninterrupted[1])


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_at_most_checkpoint_every_steps(
    tmp_path, uninterrupted
):
  workdir = tmp_path / 'run'
  rng = random.Random(0)
  steps = [0]
  for attempt in range(2):
    log = tmp_path / f'attempt{attempt}.log'
    process = start('main.py', [f'--workdir={workdir}', *FAULT_RUN], log)
    # Somewhere in one of the next four epochs after the one it resumes.
    resumed_epochs = steps[-1] // STEPS_PER_EPOCH
    wait_for(log, rf'epoch {resumed_epochs + rng.randint(1, 4)}/12', process)
    time.sleep(rng.uniform(0, 0.15))
    process.kill()
    assert process.wait() == -signal.SIGKILL
    done = max(int(e) for e in re.findall(r'epoch (\d+)/12', log.read_text()))
    steps = sorted(
        int(s) for s in os.listdir(workdir / 'checkpoints') if s.isdigit()
    )
    # Checkpoints fall every 10 steps (checkpoint_every_steps) inside the
    # epochs and at their ends, and are written in the background, one at a
    # time: when the run logged its last epoch, the save of that epoch's end
    # could wait on the one 10 steps before, itself 10 steps after the last
    # complete one.
    assert steps[-1] >= done * STEPS_PER_EPOCH - 2 * 10
    assert all(
        s % STEPS_PER_EPOCH in range(0, STEPS_PER_EPOCH, 10)
        or s % STEPS_PER_EPOCH == 0
        for s in steps
    ), steps
  code, output = main_py(workdir, *FAULT_RUN)
  assert code == 0, output[-3000:]
  assert_same_ending(workdir, uninterrupted[1])


def test_a_second_launch_is_refused_and_kill_9_leaves_no_stale_lock(
    tmp_path, uninterrupted
):
  workdir, log = tmp_path / 'run', tmp_path / 'first.log'
  first = start('main.py', [f'--workdir={workdir}', *FAULT_RUN], log)
  wait_for(log, r'epoch 1/12', first)
  # Paused, as a hung process would be: it holds the workdir until it dies.
  first.send_signal(signal.SIGSTOP)
  code, output = main_py(workdir, *FAULT_RUN)
  assert code == outcomes.EXIT_ERROR
  assert output.strip().splitlines()[-1] == (
      f'error: workdir {workdir} is in use by another run (process '
      f'{first.pid}); wait for it or stop it first'
  )
  first.kill()
  assert first.wait() == -signal.SIGKILL
  # The kernel released the dead process's lock: the run resumes.
  code, output = main_py(workdir, *FAULT_RUN)
  assert code == 0, output[-3000:]
  assert_same_ending(workdir, uninterrupted[1])


@pytest.fixture(scope='module')
def stopped_run(tmp_path_factory):
  """FAULT_RUN stopped by SIGTERM in its 7th epoch: several checkpoints."""
  workdir = tmp_path_factory.mktemp('faults') / 'stopped'
  log = workdir.parent / 'stopped.log'
  process = start('main.py', [f'--workdir={workdir}', *FAULT_RUN], log)
  wait_for(log, r'epoch 6/12', process)
  process.send_signal(signal.SIGTERM)
  assert process.wait(timeout=120) == outcomes.EXIT_STOPPED
  return workdir


def _truncate_data(checkpoint):
  for path in (checkpoint / 'state').rglob('*'):
    if path.is_file() and path.parent.name == 'd':
      with path.open('r+b') as f:
        f.truncate(path.stat().st_size // 2)


def _remove_progress(checkpoint):
  (checkpoint / 'progress' / 'metadata').unlink()


@pytest.mark.parametrize(
    'damage',
    [_truncate_data, pytest.param(_remove_progress, marks=pytest.mark.slow)],
)
def test_a_damaged_newest_checkpoint_is_skipped_with_a_warning(
    tmp_path, stopped_run, uninterrupted, damage
):
  workdir = tmp_path / 'run'
  shutil.copytree(stopped_run, workdir)
  newest = max(int(s) for s in os.listdir(workdir / 'checkpoints'))
  damage(workdir / 'checkpoints' / str(newest))
  code, output = main_py(workdir, *FAULT_RUN)
  assert code == 0, output[-3000:]
  # One warning line says it all, whatever Orbax's abandoned reads print
  # as they end: no traceback, no TensorStore spec.
  [warning] = [
      line for line in output.splitlines() if re.match(r'[WEF]\d{4} ', line)
  ]
  assert re.search(
      f'Skipping checkpoint {workdir}/checkpoints/{newest}, which does not '
      f'restore \\(moved to {workdir}/checkpoints_corrupt/{newest}\\): '
      r'\w+: \S',
      warning,
  ), warning
  assert 'TensorStore({' not in warning and 'tensorstore_spec' not in warning
  assert 'Traceback' not in output and 'Exception ignored' not in output
  # Set aside, never deleted; training went on from the one before.
  assert (workdir / 'checkpoints_corrupt' / str(newest)).is_dir()
  assert_same_ending(workdir, uninterrupted[1])


def test_a_closed_loops_echoes_are_silenced_and_other_errors_are_not(
    monkeypatch, capsys, caplog
):
  # After a failed restore, Orbax's abandoned reads end on a closed event
  # loop; whichever hook reports it, it is logged at DEBUG only.
  for hooks, name in (
      (sys, 'excepthook'),
      (sys, 'unraisablehook'),
      (threading, 'excepthook'),
  ):
    monkeypatch.setattr(hooks, name, getattr(hooks, name))
  abandoned_reads.ignore()
  closed = RuntimeError('Event loop is closed')
  sys.excepthook(RuntimeError, closed, None)
  threading.excepthook(
      threading.ExceptHookArgs([RuntimeError, closed, None, None])
  )
  logging.getLogger('concurrent.futures').error(
      'exception calling callback for <Future>',
      exc_info=(RuntimeError, closed, None),
  )
  assert capsys.readouterr().err == ''
  assert not caplog.records
  # Any other error is reported as before.
  sys.excepthook(ValueError, ValueError('a real error'), None)
  assert 'ValueError: a real error' in capsys.readouterr().err


def test_a_diverging_run_stops_keeps_its_finite_checkpoint_and_says_so(
    tmp_path,
):
  # rho = 1e30 sends the weights to infinity as soon as SAM starts, in
  # epoch 2: epoch 1's checkpoint is the last finite one.
  workdir = tmp_path / 'run'
  args = [
      *TINY_RUN,
      '--config.num_epochs=4',
      '--config.optimizer=sam',
      '--config.rho=1e30',
      '--config.sam_start_epoch=1',
  ]
  code, output = main_py(workdir, *args)
  assert code == outcomes.EXIT_DIVERGED
  assert output.strip().splitlines()[-1] == (
      'error: the training loss became non-finite in epoch 2; the last '
      f'finite checkpoint (step {STEPS_PER_EPOCH}) is kept and summary.json '
      'records "status": "diverged"; lower learning_rate (or rho) in a new '
      'workdir'
  )
  assert os.listdir(workdir / 'checkpoints') == [str(STEPS_PER_EPOCH)]
  # Strict JSON: no bare NaN.
  summary = json.loads(
      (workdir / 'summary.json').read_text(),
      parse_constant=lambda c: pytest.fail(c),
  )
  assert summary['status'] == 'diverged' and summary['diverged_epoch'] == 2
  assert [r['epoch'] for r in summary['history']] == [1]
  _, state, _ = run_state.load_checkpoint(str(workdir))
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))
  # Running it again says the same without training.
  code, again = main_py(workdir, *args)
  assert code == outcomes.EXIT_DIVERGED
  assert again.strip().splitlines()[-1] == output.strip().splitlines()[-1]
  assert 'parameters,' not in again


@pytest.mark.slow
def test_sweep_reports_diverged_runs_and_sigterm_stops_its_children(tmp_path):
  workdir, log = tmp_path / 'sweep', tmp_path / 'sweep.log'
  tiny = [
      '--config=configs/quickstart.py',
      '--set=num_epochs=2',
      '--set=num_neurons=(32,16)',
  ]
  result = run_python(
      [
          'sweep.py',
          f'--workdir={workdir}',
          *tiny,
          '--sweep=learning_rate=[0.1,1e4]',
      ]
  )
  assert result.returncode == 1
  assert re.search(
      r'^diverged +[\d.]+  learning_rate=1e4 +error: the '
      'training loss became non-finite in epoch 1',
      result.stdout,
      re.MULTILINE,
  ), result.stdout
  assert result.stdout.strip().endswith(
      '1 ok, 0 failed, 1 diverged, ' '0 skipped'
  )

  # Two 60-epoch runs at once; SIGTERM to the sweep alone reaches both.
  sweep = start(
      'sweep.py',
      [
          f'--workdir={workdir}',
          '--config=configs/quickstart.py',
          '--sweep=seed=[0,1,2]',
          '--parallel=2',
      ],
      log,
  )
  for seed in (0, 1):
    wait_for(workdir / f'seed={seed}' / 'train.log', r'epoch 1/60', sweep)
  pids = [
      int((workdir / f'seed={seed}' / '.lock').read_text()) for seed in (0, 1)
  ]
  sweep.send_signal(signal.SIGTERM)
  assert sweep.wait(timeout=120) == outcomes.EXIT_STOPPED
  text = log.read_text()
  assert re.search(
      r'^stopped +[\d.]+  seed=0 +stopped: stopped at step', text, re.MULTILINE
  ), text
  assert re.search(r'^not started +seed=2$', text, re.MULTILINE), text
  assert text.strip().endswith(
      'stopped; run the same command again to ' 'resume'
  )
  for pid in pids:  # No orphan trains on.
    with pytest.raises(ProcessLookupError):
      os.kill(pid, 0)
  for seed in (0, 1):
    assert os.listdir(workdir / f'seed={seed}' / 'checkpoints')


def test_relative_paths_resolve_against_the_current_directory(tmp_path):
  # Run from a directory that is not the repository: relative paths mean
  # what they say there, for the workdir and for init_from.
  tiny = [f'--config={REPO}/configs/quickstart.py', *TINY_RUN[1:]]
  code, output = main_py('runs/pretrain', *tiny, cwd=tmp_path)
  assert code == 0, output[-3000:]
  assert output.strip().splitlines()[-1].startswith('done: final test acc')
  assert output.strip().endswith(f'{tmp_path}/runs/pretrain/summary.json')
  code, output = main_py(
      'runs/finetune',
      *tiny,
      '--config.optimizer=sam',
      '--config.init_from=runs/pretrain',
      cwd=tmp_path,
  )
  assert code == 0, output[-3000:]
  assert f'Initialized from {tmp_path}/runs/pretrain' in output
  assert 'Resumed' not in output
  config = json.loads((tmp_path / 'runs/finetune/config.json').read_text())
  assert config['init_from'] == str(tmp_path / 'runs/pretrain')
  result = subprocess.run(
      [
          sys.executable,
          str(REPO / 'analyze.py'),
          '--workdir=runs/finetune',
          *(f'--config.analysis.{k}={v}' for k, v in SETTINGS.items()),
      ],
      cwd=tmp_path,
      env=_env(),
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert (tmp_path / 'runs/finetune/analysis/analysis.json').exists()
  # An empty workdir would have trained in the current directory.
  code, output = main_py('', *tiny, cwd=tmp_path)
  assert code == 1
  assert output.strip().splitlines()[-1] == (
      'error: --workdir is empty; give a directory'
  )


@pytest.mark.slow
def test_sweep_resolves_a_relative_workdir(tmp_path):
  result = subprocess.run(
      [
          sys.executable,
          str(REPO / 'sweep.py'),
          '--workdir=runs/sweep',
          f'--config={REPO}/configs/quickstart.py',
          '--set=num_epochs=1',
          '--set=num_neurons=(16,)',
          '--sweep=seed=[0]',
      ],
      cwd=tmp_path,
      env=_env(),
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr
  assert (tmp_path / 'runs/sweep/seed=0/summary.json').exists()


def _in_tmpfs(tmp_path, options):
  """A fresh tmpfs mounted with `options` under tmp_path (root only)."""
  mount = tmp_path / 'mnt'
  mount.mkdir()
  result = subprocess.run(
      ['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(mount)],
      capture_output=True,
      text=True,
  )
  if result.returncode != 0:
    pytest.skip(f'cannot mount a tmpfs here: {result.stderr.strip()}')
  return mount


@pytest.fixture
def small_disk(tmp_path):
  mount = _in_tmpfs(tmp_path, 'size=200k')
  yield mount
  subprocess.run(['umount', str(mount)], check=True)


@pytest.fixture
def read_only_disk(tmp_path):
  mount = _in_tmpfs(tmp_path, 'ro')
  yield mount
  subprocess.run(['umount', str(mount)], check=True)


def test_an_immediate_failure_is_the_last_line_while_threads_still_print():
  # Orbax's background threads report a failed save too, sometimes just as
  # the run prints its own error: that line must still be the last.
  program = """
import sys, threading
from configuration import cli
def chatter():
  while True:  # Whole lines, as logging and tracebacks write them.
    sys.stderr.write('a library thread reports the failure\\n')
for _ in range(4):
  threading.Thread(target=chatter, daemon=True).start()
cli.fail('cannot write the run', now=True)
"""
  for _ in range(5):
    result = run_python(['-c', program], timeout=60)
    assert result.returncode == outcomes.EXIT_ERROR
    assert result.stderr.endswith('\nerror: cannot write the run\n')


def test_a_full_disk_is_one_line_and_keeps_the_checkpoints_saved(small_disk):
  # 200 kB hold the config and a checkpoint or two, not twenty epochs.
  workdir = small_disk / 'run'
  code, output = main_py(workdir, *TINY_RUN, '--config.num_epochs=20')
  assert code == outcomes.EXIT_ERROR
  assert re.fullmatch(
      rf'error: cannot write {workdir}\S*: No space left on ' 'device',
      output.strip().splitlines()[-1],
  ), output[-3000:]
  saved = [s for s in os.listdir(workdir / 'checkpoints') if s.isdigit()]
  assert saved
  _, state, progress = run_state.load_checkpoint(str(workdir))
  assert progress['epoch'] >= 1


def test_a_read_only_disk_is_one_line(read_only_disk):
  code, output = main_py(read_only_disk / 'run', *TINY_RUN)
  assert code == outcomes.EXIT_ERROR
  assert output.strip().splitlines()[-1] == (
      f'error: cannot write {read_only_disk}/run: Read-only file system'
  )


@pytest.mark.parametrize(
    'args,message',
    [
        (
            ['--config.no_such_key=1'],
            'error: --config.no_such_key: unknown config '
            "key 'no_such_key'; see configs/default.py for every key",
        ),
        (
            ['--config.num_neuron=(8,)'],
            'error: --config.num_neuron: unknown config '
            "key 'num_neuron'; did you mean num_neurons or num_nonzero or "
            'num_epochs?',
        ),
        (
            ['--config.num_neurons=abc'],
            'error: num_neurons must be a tuple of '
            "integers, e.g. '(300,100)', got ('abc',)",
        ),
        (
            ['--config.learning_rate=fast'],
            'error: flag --config.learning_rate='
            'fast: could not convert string to float',
        ),
        (
            ['--config=configs/no_such_config.py'],
            'error: config file configs/no_such_config.py does not exist',
        ),
        (['--config.num_epochs=0'], 'error: num_epochs must be >= 1, got 0'),
        (
            ['--config.batch_size=8000'],
            'error: the training split has fewer '
            'examples per process than the batch (8000); lower batch_size',
        ),
        (
            [
                '--config.dataset=mnist',
                '--config.download=False',
                '--config.data_dir=no_tfds_here',
            ],
            "error: dataset 'mnist' is not in "
            "config.data_dir='{cwd}/no_tfds_here' and config.download is False",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
  workdir = tmp_path / 'run'
  # Not TINY_RUN: a tuple flag given twice appends (ml_collections).
  code, output = main_py(workdir, '--config=configs/quickstart.py', *args)
  assert code == outcomes.EXIT_ERROR
  assert 'Traceback' not in output
  assert (
      output.strip().splitlines()[-1].startswith(message.format(cwd=REPO))
  ), output[-2000:]
  # Refused before training: the workdir is not even created, so the
  # corrected command is accepted.
  assert not workdir.exists()


def test_init_from_another_model_writes_nothing(tmp_path):
  code, output = main_py(tmp_path / 'source', *TINY_RUN)
  assert code == 0, output[-3000:]
  code, output = main_py(
      tmp_path / 'run',
      *TINY_RUN,
      '--config.num_neurons=(8,)',
      f'--config.init_from={tmp_path}/source',
  )
  assert code == outcomes.EXIT_ERROR
  assert output.strip().splitlines()[-1] == (
      f'error: init_from={tmp_path}/source holds a different model '
      '(parameter shapes differ); use the same model and width'
  )
  assert not (tmp_path / 'run').exists()


def test_a_finished_run_is_left_alone_and_extended_only_where_it_can_be(
    tmp_path,
):
  workdir = tmp_path / 'run'
  constant = [*TINY_RUN, '--config.lr_schedule=constant']
  code, output = main_py(workdir, *constant)
  assert code == 0, output[-3000:]

  def modification_times():
    # The lock file holds the PID of whoever last checked the workdir.
    return {
        p: p.stat().st_mtime_ns for p in workdir.rglob('*') if p.name != '.lock'
    }

  files = modification_times()
  # Again, even with an evaluation key changed: nothing is touched.
  code, output = main_py(workdir, *constant, '--config.eval_batch_size=500')
  assert code == 0
  assert 'already finished its 2 epochs' in output
  assert modification_times() == files
  # A key that changes training is refused, naming those that may change.
  code, output = main_py(workdir, *constant, '--config.rho=0.1')
  assert code == 1
  assert (
      output.strip()
      .splitlines()[-1]
      .startswith(
          f'error: workdir {workdir} holds a run with a different config '
          '(differs in: rho); resume it with the same config or choose a new '
          'workdir (a resumed run may change only num_epochs and '
          'eval_batch_size'
      )
  )
  # Two more epochs at a constant learning rate: the same as four epochs
  # from the start.
  code, output = main_py(workdir, *constant, '--config.num_epochs=4')
  assert code == 0, output[-3000:]
  code, output = main_py(tmp_path / 'four', *constant, '--config.num_epochs=4')
  assert code == 0, output[-3000:]
  assert_same_ending(workdir, ending(tmp_path / 'four'))
  # A step schedule scales with the length of training: refused.
  code, output = main_py(tmp_path / 'step', *TINY_RUN)
  assert code == 0
  code, output = main_py(tmp_path / 'step', *TINY_RUN, '--config.num_epochs=4')
  assert code == 1
  assert (
      output.strip()
      .splitlines()[-1]
      .startswith(
          'error: num_epochs 2 -> 4 changes the learning rate of steps already '
          'trained'
      )
  )


def test_hparams_are_the_keys_a_run_reads_with_tuples_as_strings(tmp_path):
  code, output = main_py(tmp_path, *TINY_RUN)
  assert code == 0, output[-3000:]
  events = event_accumulator.EventAccumulator(
      str(tmp_path), size_guidance={event_accumulator.TENSORS: 0}
  )
  events.Reload()
  content = events.SummaryMetadata('_hparams_/session_start_info')
  data = plugin_data_pb2.HParamsPluginData.FromString(
      content.plugin_data.content
  )
  hparams = data.session_start_info.hparams
  assert hparams['num_neurons'].string_value == '(32, 16)'
  assert hparams['lr_boundaries'].string_value == '(0.5, 0.75)'
  assert hparams['rho'].number_value == 0.05
  assert hparams['sam_steps'].number_value == 1  # SAM's own key.
  # An MLP on MNIST-1D reads no other family's keys, nor those of text or
  # graphs.
  for unread in (
      'num_filters',
      'patch_size',
      'hidden_size',
      'vocab_size',
      'max_edges',
  ):
    assert unread not in hparams, unread


def _replica_ending(workdir, replica):
  """A replica's summary, less timings."""
  summary = json.loads(
      (workdir / f'replica_{replica}' / 'summary.json').read_text()
  )
  for key in ('wall_seconds', 'train_examples_per_sec'):
    summary.pop(key)
  for record in summary['history']:
    record.pop('examples_per_sec')
  return summary


@pytest.mark.slow
def test_a_diverging_replica_is_frozen_and_its_siblings_finish(tmp_path):
  # Replica 1's rho of 1e30 diverges as soon as SAM starts, in epoch 2.
  args = [
      *TINY_RUN,
      '--config.num_epochs=4',
      '--config.optimizer=sam',
      '--config.sam_start_epoch=1',
      '--config.num_replicas=2',
  ]
  workdir = tmp_path / 'run'
  code, output = main_py(workdir, *args, '--config.replica_rho=(0.05,1e30)')
  assert code == outcomes.EXIT_DIVERGED, output[-3000:]
  message = output.strip().splitlines()[-1]
  assert message == (
      'error: the training loss became non-finite from epoch 2 (replica 1), '
      'frozen at its last finite state; the other replicas finished, and '
      'each summary.json records its status; lower learning_rate (or rho) in '
      'a new workdir for the diverged ones'
  )
  healthy, diverged = (_replica_ending(workdir, r) for r in (0, 1))
  assert healthy['status'] == 'finished'
  assert [r['epoch'] for r in healthy['history']] == [1, 2, 3, 4]
  assert diverged['status'] == 'diverged' and diverged['diverged_epoch'] == 2
  assert [r['epoch'] for r in diverged['history']] == [1]
  index = json.loads((workdir / 'summary.json').read_text())
  assert (index['status'], index['diverged_replicas']) == ('diverged', [1])
  # Replica 0 trained exactly as beside a sibling that did not diverge.
  reference = tmp_path / 'reference'
  code, _ = main_py(reference, *args, '--config.replica_rho=(0.05,0.06)')
  assert code == 0
  assert healthy == _replica_ending(reference, 0)
  # Frozen at its last finite state: the checkpoint of epoch 1 (its weights
  # there as in the reference, whose replica 1 differs from epoch 2 on).
  _, state, progress = run_state.load_checkpoint(str(workdir))
  assert progress['frozen'] == {'1': 2}
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))
  # Again: the same message, nothing trained.
  code, again = main_py(workdir, *args, '--config.replica_rho=(0.05,1e30)')
  assert code == outcomes.EXIT_DIVERGED
  assert again.strip().splitlines()[-1] == message
  assert 'parameters,' not in again
  # The report uses the healthy replica and lists the other.
  result = run_python(['report.py', str(workdir)], check=True)
  assert f'not used (diverged): {workdir / "replica_1"}' in result.stdout
  assert 'wrote' in result.stdout


@pytest.mark.slow
def test_a_frozen_replica_stays_frozen_across_a_resume(tmp_path):
  args = [
      *FAULT_RUN,
      '--config.num_epochs=5',
      '--config.optimizer=sam',
      '--config.sam_start_epoch=1',
      '--config.num_replicas=2',
      '--config.num_neurons=(32,16)',
      '--config.replica_rho=(0.05,1e30)',
  ]
  whole = tmp_path / 'whole'
  code, output = main_py(whole, *args)
  assert code == outcomes.EXIT_DIVERGED, output[-3000:]
  workdir, log = tmp_path / 'run', tmp_path / 'first.log'
  process = start('main.py', [f'--workdir={workdir}', *args], log)
  wait_for(log, r'epoch 3/5', process)
  process.send_signal(signal.SIGTERM)
  assert process.wait(timeout=120) == outcomes.EXIT_STOPPED
  code, output = main_py(workdir, *args)
  assert code == outcomes.EXIT_DIVERGED, output[-3000:]
  for replica in (0, 1):
    assert _replica_ending(workdir, replica) == _replica_ending(whole, replica)
