"""sweep.py: grids, run names, skipping, resuming, failures, --parallel."""

import collections
import csv
import datetime
import importlib
import json
import math
import os
import pathlib
import re
import subprocess
import sys

import pytest

from configs import default
from runs import rundir
from sweeps import plan
from tests import data_files
from tests.conftest import REPO
from tests.conftest import run_python

# A tiny MNIST-1D run: a few seconds of main.py, most of it start-up.
TINY = [
    '--config=configs/quickstart.py',
    '--set=num_neurons=(16,)',
    '--set=num_epochs=1',
    '--set=batch_size=100',
]


def test_axes_split_at_top_level_commas_only():
  assert plan.parse_axis('num_neurons=[(75,25),(150, 50),(16,)]') == (
      'num_neurons',
      ['(75,25)', '(150, 50)', '(16,)'],
  )
  assert plan.parse_axis(' optimizer = [sgd, sam] ') == (
      'optimizer',
      ['sgd', 'sam'],
  )
  assert plan.parse_axis('x=[([1,2],(3,4)),5]') == (
      'x',
      ['([1,2],(3,4))', '5'],
  )


@pytest.mark.parametrize(
    'text,message',
    [
        ('optimizer', 'expected KEY=[V1,V2,...]'),
        ('optimizer=sgd', "'sgd' is not a list"),
        ('optimizer=[]', 'is an empty list'),
        ('optimizer=[sgd,,sam]', 'has an empty value'),
        ('num_neurons=[75,25)]', "has an unmatched ')'"),
        ('num_neurons=[(75,25)', 'is not a list'),
        ('num_neurons=[((75,25)]', 'has an unclosed bracket'),
        ('=[1,2]', "'' is not a config key"),
        ('num neurons=[1]', "'num neurons' is not a config key"),
    ],
)
def test_malformed_axes_are_refused_with_the_reason(text, message):
  with pytest.raises(plan.SweepError) as error:
    plan.parse_axis(text)
  assert str(error.value).startswith(f'--sweep={text!r}: ')
  assert message in str(error.value)


def test_values_format_as_main_py_parses_them():
  assert plan.format_value((75, 25)) == '(75,25)'
  assert plan.format_value((16,)) == '(16,)'
  assert plan.format_value(0.5) == '0.5'
  assert plan.format_value('sam') == 'sam'


def test_run_names_are_readable_safe_and_ignore_axis_order():
  point = {'seed': '0', 'optimizer': 'sgd', 'num_neurons': '(75, 25)'}
  assert plan.run_name(point) == 'num_neurons=75_25,optimizer=sgd,seed=0'
  assert plan.run_name(dict(reversed(point.items()))) == plan.run_name(point)
  assert plan.run_name(
      {'lr_boundaries': '(0.5,)', 'data_dir': '/d/tfds', 'rho': '1e-2'}
  ) == ('data_dir=_d_tfds,lr_boundaries=0.5,rho=1e-2')


def test_grid_is_the_product_with_the_first_axis_slowest():
  points = plan.grid_points({'seed': ['0', '1'], 'optimizer': ['sgd', 'sam']})
  assert [(p['seed'], p['optimizer']) for p in points] == [
      ('0', 'sgd'),
      ('0', 'sam'),
      ('1', 'sgd'),
      ('1', 'sam'),
  ]


def test_command_line_flags_extend_a_sweep_config():
  path = 'configs/sweeps/mnist_mlp_width.py'
  merged = plan.build_sweep(
      None, ['seed=[5]', 'rho=[0.1,0.2]'], ['num_epochs=7'], path
  )
  assert merged.config == str(REPO / 'configs/mnist_mlp.py')
  assert merged.grid == {
      'seed': ['5'],
      'num_neurons': [
          '(75,25)',
          '(150,50)',
          '(300,100)',
          '(1200,400)',
          '(3000,1000)',
      ],
      'optimizer': ['sgd', 'sam'],
      'rho': ['0.1', '0.2'],
  }
  assert merged.fixed == {'num_epochs': '7'}
  assert (
      plan.build_sweep('configs/quickstart.py', [], [], path).config
      == 'configs/quickstart.py'
  )
  with pytest.raises(plan.SweepError, match='seed is swept'):
    plan.build_sweep(None, [], ['seed=0'], path)
  with pytest.raises(plan.SweepError, match='give --config=FILE'):
    plan.build_sweep(None, ['seed=[0]'], [], None)
  with pytest.raises(plan.SweepError, match='the grid is empty'):
    plan.build_sweep('configs/quickstart.py', [], ['seed=0'], None)


@pytest.mark.parametrize(
    'body,message',
    [
        ('X = 1\n', 'defines no get_sweep()'),
        (
            "def get_sweep():\n  return {'grid': {'seed': [0]}}\n",
            "returned the fields ['grid']; expected config, grid",
        ),
        (
            (
                'def get_sweep():\n'
                "  return {'config': 'c.py', 'grid': {}, 'fix': {}}\n"
            ),
            "returned the fields ['config', 'fix', 'grid']",
        ),
    ],
)
def test_malformed_sweep_configs_are_refused(tmp_path, body, message):
  path = tmp_path / 'bad_sweep.py'
  path.write_text(body)
  with pytest.raises(plan.SweepError, match=re.escape(message)):
    plan.build_sweep(None, [], [], str(path))


@pytest.mark.parametrize(
    'name',
    sorted(
        p.stem
        for p in (REPO / 'configs' / 'sweeps').glob('*.py')
        if p.stem != '__init__'
    ),
)
def test_every_sweep_config_plans_distinct_valid_runs(name, tmp_path):
  # The sweeps of datasets read from files find tiny ones in their formats.
  data = tmp_path / 'data'
  data_files.write_treebank(data)
  data_files.write_mitbih(data)
  data_files.write_tu(data, 'Mutagenicity')
  path = f'configs/sweeps/{name}.py'
  config = plan.build_sweep(None, [], [], path)
  module = pathlib.Path(config.config).relative_to(REPO).with_suffix('')
  base = importlib.import_module('.'.join(module.parts)).get_config()
  if base.get('dataset') in ('ud_en_ewt', 'mitbih', 'tu/Mutagenicity'):
    config = plan.build_sweep(None, [], [f'data_dir={data}'], path)
  assert all(k in default.get_config() for k in config.grid)
  runs, shared = plan.plan_runs(config, tmp_path)
  # Only SGD runs that differ in SAM's keys alone (a grid of rhos) repeat,
  # and are trained once.
  assert all(default.is_sam_only(key) for run in shared for key in run.unread)
  assert len(runs) + len(shared) == math.prod(
      len(v) for v in config.grid.values()
  )
  assert len({run.name for run in runs}) == len(runs)
  # Each run's resolved config holds the grid values its name says.
  for run in runs:
    values = {key: plan.format_value(run.config[key]) for key in config.grid}
    assert plan.run_name(values) == run.name


@pytest.mark.parametrize(
    'name, dataset',
    [
        ('fashion_mnist_mlp_width_cpu', 'fashion_mnist'),
        ('mnist1d_mlp_width_cpu', 'mnist1d'),
    ],
)
def test_the_cpu_demos_are_5_widths_of_sgd_and_sam_with_3_seeds(
    name, dataset, tmp_path
):
  config = plan.build_sweep(None, [], [], f'configs/sweeps/{name}.py')
  runs, _ = plan.plan_runs(config, tmp_path)
  assert len(runs) == 10
  assert {run.config.num_replicas for run in runs} == {3}
  assert len({run.config.num_neurons for run in runs}) == 5
  assert {run.config.optimizer for run in runs} == {'sgd', 'sam'}
  assert {run.config.dataset for run in runs} == {dataset}


def _plan(tmp_path, *axes, fixed=()):
  runs, shared = plan.plan_runs(
      plan.build_sweep('configs/quickstart.py', list(axes), list(fixed), None),
      tmp_path,
  )
  assert not shared
  return runs


@pytest.mark.parametrize(
    'axis,message',
    [
        ('rho=[0.1,x]', 'run rho=x: flag --config.rho=x: could not convert'),
        ('no_such_key=[1,2]', "unknown config key 'no_such_key'"),
        ('seed=[0,0]', 'several grid points share the run name seed=0'),
        ('num_neurons=[(1,2),[1,2]]', 'share the run name num_neurons=1_2'),
        # Values refused by main.py's checks, found before the first run.
        (
            'optimizer=[sgd,sma]',
            "run optimizer=sma: unknown optimizer 'sma'; known: sam, sgd",
        ),
        ('sparsity=[0.5,1.5]', 'run sparsity=1.5: sparsity must be in [0, 1)'),
        (
            'model=[mlp,vit]',
            'run model=vit: vit reads images, but mnist1d holds features',
        ),
    ],
)
def test_bad_grids_are_refused_before_anything_runs(tmp_path, axis, message):
  with pytest.raises(plan.SweepError, match=re.escape(message)):
    _plan(tmp_path, axis)
  assert not list(tmp_path.iterdir())


def test_runs_get_their_overrides_and_resolved_configs(tmp_path):
  runs = _plan(
      tmp_path,
      'num_neurons=[(8,4)]',
      'optimizer=[sgd,sam]',
      fixed=['num_epochs=3'],
  )
  assert [run.name for run in runs] == [
      'num_neurons=8_4,optimizer=sgd',
      'num_neurons=8_4,optimizer=sam',
  ]
  assert runs[0].workdir == tmp_path / 'num_neurons=8_4,optimizer=sgd'
  assert runs[0].command[-4:] == [
      '--config=configs/quickstart.py',
      '--config.num_epochs=3',
      '--config.num_neurons=(8,4)',
      '--config.optimizer=sgd',
  ]
  assert runs[1].config.num_neurons == (8, 4)
  assert runs[1].config.num_epochs == 3
  assert runs[1].config.optimizer == 'sam'


def test_a_run_is_finished_only_with_a_summary_of_its_config(tmp_path):
  (run,) = _plan(tmp_path, 'seed=[3]')
  assert not plan.is_finished(run)
  run.workdir.mkdir()
  summary = {'config': json.loads(json.dumps(run.config.to_dict()))}
  (run.workdir / 'summary.json').write_text(json.dumps(summary))
  assert plan.is_finished(run)
  summary['config']['num_epochs'] += 1
  (run.workdir / 'summary.json').write_text(json.dumps(summary))
  assert not plan.is_finished(run)


def test_a_malformed_sweep_flag_is_one_line_and_runs_nothing(tmp_path):
  workdir = tmp_path / 'sweep'
  result = run_python(
      ['sweep.py', f'--workdir={workdir}', *TINY, '--sweep=optimizer=sgd']
  )
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      "error: --sweep='optimizer=sgd': 'sgd' is not a list [V1,V2,...]"
  ]
  assert not workdir.exists()


def _attempts(
    log: pathlib.Path,
) -> list[tuple[datetime.datetime, datetime.datetime]]:
  """(start, finish) of each main.py process sweep.py logged in `log`."""
  times = [
      datetime.datetime.fromisoformat(t)
      for t in re.findall(
          r'^=== sweep.py (?:started|finished) at (\S+):',
          log.read_text(),
          re.MULTILINE,
      )
  ]
  return list(zip(times[::2], times[1::2]))


@pytest.mark.slow
def test_failures_parallel_runs_skipping_and_resuming(tmp_path):
  workdir = tmp_path / 'sweep'
  # 50 training examples are fewer than a batch of 100: a valid config that
  # main.py refuses once it has read the data, a failing run.
  grid = ['--sweep=num_train_examples=[50,4000]', '--sweep=optimizer=[sgd,sam]']
  result = run_python(
      ['sweep.py', f'--workdir={workdir}', *TINY, *grid, '--parallel=2']
  )
  assert result.returncode == 1, result.stderr[-3000:]
  table = result.stdout[result.stdout.index('status ') :]
  for optimizer in ('sgd', 'sam'):
    assert re.search(
        rf'^failed +[\d.]+  num_train_examples=50,optimizer={optimizer} +'
        'error: the training split has fewer examples per process than the '
        r'batch \(100\)',
        table,
        re.MULTILINE,
    ), table
    assert re.search(
        rf'^ok +[\d.]+  num_train_examples=4000,' rf'optimizer={optimizer}',
        table,
        re.MULTILINE,
    )
  assert table.strip().endswith('2 ok, 2 failed, 0 skipped')
  sgd = workdir / 'num_train_examples=4000,optimizer=sgd'
  sam = workdir / 'num_train_examples=4000,optimizer=sam'
  first = json.loads((sgd / 'summary.json').read_text())
  assert first['config']['optimizer'] == 'sgd'
  assert first['config']['num_neurons'] == [16]
  assert (sam / 'summary.json').exists()
  # --parallel=2: the first two runs were training at the same time.
  ((one_start, one_end),) = _attempts(
      workdir / 'num_train_examples=50,optimizer=sgd' / 'train.log'
  )
  ((two_start, two_end),) = _attempts(
      workdir / 'num_train_examples=50,optimizer=sam' / 'train.log'
  )
  assert one_start < two_end and two_start < one_end

  # The report pairs the two runs that finished and lists the two that
  # failed, with their error.
  result = run_python(['report.py', str(workdir)], check=True)
  assert result.stdout.count('not used (failed: error: the training split') == 2
  (gain,) = list(csv.DictReader((workdir / 'sam_gain.csv').open()))
  sam_accuracy = json.loads((sam / 'summary.json').read_text())[
      'final_test_accuracy'
  ]
  assert float(gain['gain_mean']) == pytest.approx(
      sam_accuracy - first['final_test_accuracy']
  )

  # Interrupted after its last checkpoint but before its summary: resumed.
  (sgd / 'summary.json').unlink()
  result = run_python(
      [
          'sweep.py',
          f'--workdir={workdir}',
          *TINY,
          '--sweep=num_train_examples=[4000]',
          '--sweep=optimizer=[sgd,sam]',
      ]
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert '2 runs: 1 finished already, 1 to run' in result.stdout
  assert result.stdout.strip().endswith('1 ok, 0 failed, 1 skipped')
  assert len(_attempts(sam / 'train.log')) == 1  # Skipped: not relaunched.
  log = (sgd / 'train.log').read_text()
  second_attempt = log[log.rindex('=== sweep.py started') :]
  assert 'Resumed from the checkpoint at the end of epoch 1' in second_attempt
  assert 'epoch 1/1' not in second_attempt  # Nothing was retrained.
  assert json.loads((sgd / 'summary.json').read_text())['history'] == (
      first['history']
  )


def test_an_optimizer_by_rho_grid_trains_sgd_once_per_seed(tmp_path):
  workdir = tmp_path / 'sweep'
  result = run_python(
      [
          'sweep.py',
          f'--workdir={workdir}',
          *TINY,
          '--sweep=optimizer=[sgd,sam]',
          '--sweep=rho=[0.02,0.1]',
          '--dry_run',
      ],
      check=True,
  )
  lines = result.stdout.splitlines()
  assert lines[0] == (
      'optimizer=sgd,rho=0.1: the same run as '
      'optimizer=sgd,rho=0.02 (they differ only in rho, which '
      'does not change what it trains); trained once'
  )
  assert [line.split(' (')[0] for line in lines[1:]] == [
      'optimizer=sgd,rho=0.02',
      'optimizer=sam,rho=0.02',
      'optimizer=sam,rho=0.1',
  ]
  assert not workdir.exists()


@pytest.mark.slow
def test_two_sweeps_on_one_workdir_share_its_runs(tmp_path):
  workdir = tmp_path / 'sweep'
  command = [
      sys.executable,
      'sweep.py',
      f'--workdir={workdir}',
      *TINY,
      '--sweep=seed=[0,1,2]',
  ]
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  first, second = (
      subprocess.Popen(
          command,
          cwd=REPO,
          env=env,
          stdout=subprocess.PIPE,
          stderr=subprocess.PIPE,
          text=True,
      )
      for _ in range(2)
  )
  outputs = [p.communicate(timeout=600) for p in (first, second)]
  # Neither sweep calls a run that the other trained failed: each run is
  # ok in one, and ok or skipped (finished by the other) in the other.
  trained = collections.Counter()
  for process, (stdout, stderr) in zip((first, second), outputs):
    assert process.returncode == 0, stdout + stderr[-3000:]
    table = stdout[stdout.index('status ') :].splitlines()[1:4]
    statuses = {
        line.split()[-1]
        if line.startswith('ok')
        else line.split()[1]: line.split()[0]
        for line in table
    }
    assert set(statuses.values()) <= {'ok', 'skipped'}, stdout
    trained.update(run for run, status in statuses.items() if status == 'ok')
  assert trained == {f'seed={seed}': 1 for seed in range(3)}
  for seed in range(3):
    run = workdir / f'seed={seed}'
    assert json.loads((run / 'summary.json').read_text())['status'] == (
        'finished'
    )


def test_quoted_values_keep_their_commas(tmp_path):
  assert plan.split_list('["/a/x=1,y=2",/b,(1,2)]') == [
      '/a/x=1,y=2',
      '/b',
      '(1,2)',
  ]
  assert plan.split_list("['a,b']") == ['a,b']
  with pytest.raises(plan.SweepError, match='has an unclosed quote'):
    plan.split_list('["a,b]')
  # Fine-tunes of two runs of a pretraining sweep, whose directory names
  # hold commas.
  sources = [
      tmp_path / 'pretrain' / f'optimizer=sgd,seed={seed}' for seed in (0, 1)
  ]
  for source in sources:
    (source / 'checkpoints').mkdir(parents=True)
    (source / 'config.json').write_text(
        json.dumps(default.get_config().to_dict())
    )
  quoted = ','.join(f'"{source}"' for source in sources)
  runs = _plan(tmp_path / 'sweep', f'init_from=[{quoted}]')
  assert [run.config.init_from for run in runs] == [str(s) for s in sources]
  unquoted = ','.join(map(str, sources))
  with pytest.raises(
      plan.SweepError,
      match=re.escape(
          'is not a run directory with checkpoints (a path that holds commas, '
          "as a sweep's run directories do, is quoted in the list: "
          'init_from=["DIR"])'
      ),
  ):
    _plan(tmp_path / 'sweep', f'init_from=[{unquoted}]')


def test_a_run_from_before_a_new_key_is_finished_and_resumes(tmp_path):
  # Its config.json and summary.json lack sam_variant, added later with the
  # default that is what the run did.
  (run,) = _plan(tmp_path, 'seed=[3]')
  run.workdir.mkdir()
  old = json.loads(json.dumps(run.config.to_dict()))
  del old['sam_variant']
  (run.workdir / 'summary.json').write_text(json.dumps({'config': old}))
  (run.workdir / 'config.json').write_text(json.dumps(old))
  assert plan.is_finished(run)
  assert rundir.changed_keys(run.workdir, run.config) == []
  run.config.sam_variant = 'usam'
  assert rundir.changed_keys(run.workdir, run.config) == ['sam_variant']
