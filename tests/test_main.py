"""main.py end to end: TensorBoard events, summary.json, and bad input."""

import json
import re

import pytest
from tensorboard.backend.event_processing import event_accumulator

import sam
from tests.conftest import assert_refused
from tests.conftest import run_python

SMALL = [
    '--config=configs/quickstart.py',
    '--config.num_neurons=(32,16)',
    '--config.num_epochs=2',
    '--config.batch_size=100',
]


def small_with(*overrides):
  """SMALL with `overrides` replacing the keys they set (absl keeps only one
  value of a flag given twice)."""
  keys = {o.split('=')[0] for o in overrides}
  return [a for a in SMALL if a.split('=')[0] not in keys] + list(overrides)


def test_main_trains_logs_and_summarizes(tmp_path):
  workdir = tmp_path / 'run'
  result = run_python(
      [
          '-X',
          'importtime',
          'main.py',
          f'--workdir={workdir}',
          *SMALL,
          '--config.optimizer=sam',
          '--config.rho=0.1',
      ],
      check=True,
  )
  assert 'epoch 2/2  train loss' in result.stderr
  # Data that TFDS does not read needs no TensorFlow (2 to 3 s to import),
  # nor TFDS: TensorBoard events are written without them.
  imported = set(re.findall(r'\|\s+(\S+)$', result.stderr, re.MULTILINE))
  assert 'jax' in imported and 'tensorboardX' in imported
  assert not {'tensorflow', 'tensorflow_datasets', 'clu'} & imported

  config = json.loads((workdir / 'config.json').read_text())
  assert config['rho'] == 0.1 and config['num_neurons'] == [32, 16]

  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['config'] == config
  assert summary['steps'] == 2 * 40 and summary['epochs'] == 2
  assert summary['num_params'] == 40 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
  assert 0.2 < summary['final_test_accuracy'] <= 1
  assert summary['best_test_accuracy'] >= summary['final_test_accuracy']
  assert summary['final_train_loss'] > 0 and summary['wall_seconds'] > 0
  assert summary['train_examples_per_sec'] > 0
  assert summary['sparsity'] == 0

  # Scalars as TensorBoard's own reader (and tools built on it) expects.
  events = event_accumulator.EventAccumulator(
      str(workdir), size_guidance={event_accumulator.SCALARS: 0}
  )
  events.Reload()
  tags = set(events.Tags()['scalars'])
  for tag in (
      'train/loss',
      'train/accuracy',
      'test/loss',
      'test/accuracy',
      'learning_rate',
      'sparsity',
      'weight_norm',
      'examples_per_sec',
      'steps_per_sec',
      'uptime',
  ):
    assert tag in tags, tag
  steps = [e.step for e in events.Scalars('test/accuracy')]
  assert steps == [40, 80]
  logged = [e.value for e in events.Scalars('test/accuracy')]
  assert logged == pytest.approx(
      [h['test_accuracy'] for h in summary['history']]
  )
  assert '_hparams_/session_start_info' in events.summary_metadata


BAD_INPUTS = [
    (
        ['--config.model=vgg'],
        "unknown model 'vgg'; known: diagonal_linear, gcn, lstm, mlp, "
        'preact_resnet18',
    ),
    (['--config.dataset=svhn'], "unknown dataset 'svhn'; known: cifar10"),
    (['--config.optimizer=adam'], "unknown optimizer 'adam'; known: sam, sgd"),
    (
        ['--config.sam_variant=nosuch'],
        "unknown sam_variant 'nosuch'; known: " + ', '.join(sam.VARIANTS),
    ),
    (['--config.pruner=grasp'], "unknown pruner 'grasp'; known: magnitude"),
    (
        ['--config.optimizer=sam', '--config.rho=0'],
        'rho must be > 0 for sam, got 0',
    ),
    (['--config.sparsity=1.0'], 'sparsity must be in [0, 1), got 1.0'),
    (['--config.sparsity=-0.1'], 'sparsity must be in [0, 1), got -0.1'),
    (['--config.num_neurons=()'], 'num_neurons is empty'),
    (
        ['--config.batch_size=102'],
        'batch_size 102 is not divisible by the 4 devices',
    ),
]


@pytest.mark.parametrize('overrides,message', BAD_INPUTS)
def test_bad_input_fails_early_with_one_line(tmp_path, overrides, message):
  workdir = tmp_path / 'run'
  result = run_python(
      ['main.py', f'--workdir={workdir}', *small_with(*overrides)], devices=4
  )
  assert result.returncode != 0
  # The error alone: no traceback, and the resolved config is logged only
  # once a run is accepted.
  [line] = result.stderr.strip().splitlines()
  assert line.startswith('error: ') and message in line, result.stderr[-2000:]
  assert not workdir.exists()  # Nothing was written.


def test_a_workdir_that_is_a_file_is_refused_and_kept(tmp_path):
  workdir = tmp_path / 'run'
  workdir.write_text('not a directory')
  result = run_python(['main.py', f'--workdir={workdir}', *SMALL])
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1] == (
      f'error: workdir {workdir} exists and is not a directory'
  )
  assert workdir.read_text() == 'not a directory'


@pytest.mark.parametrize('program', ['main.py', 'sweep.py'])
@pytest.mark.parametrize(
    'config,message',
    [
        ('SYNTAX', "does not parse: line 2: '(' was never closed"),
        (
            'configs/fashion_mnist_mlp_label_noise.py:forty',
            'Error whilst parsing config file: ValueError: could not convert '
            "string to float: 'forty'",
        ),
    ],
)
def test_a_config_that_does_not_load_is_one_line(
    tmp_path, program, config, message
):
  if config == 'SYNTAX':
    config = tmp_path / 'broken.py'
    config.write_text('def get_config():\n  return (\n')
  workdir = tmp_path / 'run'
  args = [f'--workdir={workdir}', f'--config={config}']
  if program == 'sweep.py':
    args.append('--sweep=seed=[0,1]')
  result = run_python([program, *args])
  assert result.returncode == 1
  [line] = result.stderr.strip().splitlines()
  assert line.startswith('error: ') and message in line, result.stderr
  assert not workdir.exists()


def test_analyze_refuses_a_misspelt_key_in_one_line(tmp_path):
  assert_refused(
      run_python(
          [
              'analyze.py',
              f'--workdir={tmp_path}',
              '--config.analysis.num_exmples=1',
          ]
      ),
      'error: --config.analysis.num_exmples: unknown config key '
      "'analysis.num_exmples'; did you mean analysis.num_examples or "
      'analysis.num_moments or analysis.noise_samples?',
  )


def test_a_config_that_needs_init_from_is_refused_without_it(tmp_path):
  assert_refused(
      run_python(
          [
              'main.py',
              f'--workdir={tmp_path / "run"}',
              '--config=configs/fashion_mnist_mlp_finetune_sam.py',
          ]
      ),
      'error: config file configs/fashion_mnist_mlp_finetune_sam.py needs '
      "init_from: give it as the config's argument (--config=configs/"
      'fashion_mnist_mlp_finetune_sam.py:VALUE) or as '
      '--config.init_from=VALUE',
  )
  assert not (tmp_path / 'run').exists()
