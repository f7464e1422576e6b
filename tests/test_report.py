"""report.py on synthetic summaries whose means, stds and gains are known."""

import csv
import json
import math

import pytest

import report
from tests.conftest import run_python

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def make_summary(seed, optimizer, accuracy, *, best_delta=0.01,
                 num_params=1000, measured_sparsity=0.0, **config):
  """A summary.json's content with the fields report.py reads."""
  return {
      'config': {'dataset': 'mnist', 'model': 'mlp', 'num_neurons': [10, 5],
                 'optimizer': optimizer, 'rho': 0.05, 'seed': seed,
                 'sparsity': 0.0, 'num_epochs': 10, **config},
      'num_params': num_params, 'sparsity': measured_sparsity,
      'final_test_accuracy': accuracy,
      'best_test_accuracy': accuracy + best_delta,
      'final_test_loss': 1 - accuracy, 'final_train_loss': 0.5 - accuracy / 2,
      'final_train_accuracy': accuracy + 0.05,
  }


def write(path, content):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(content))


def read_csv(path):
  with path.open() as f:
    return list(csv.DictReader(f))


@pytest.fixture
def width_sweep(tmp_path):
  """Two widths x SGD/SAM x 3 seeds, stored in the layouts report.py reads.

  Final test accuracy, per seed 0, 1, 2 (best = final + 0.01 for SGD,
  + 0.02 for SAM):
    (10, 5), 1000 parameters:  SGD .80 .82 .84  SAM .83 .86 .89
    (40, 20), 5000 parameters: SGD .90 .90 .90  SAM .91 .93 .95
  """
  accuracies = {((10, 5), 'sgd'): (0.80, 0.82, 0.84),
                ((10, 5), 'sam'): (0.83, 0.86, 0.89),
                ((40, 20), 'sgd'): (0.90, 0.90, 0.90),
                ((40, 20), 'sam'): (0.91, 0.93, 0.95)}
  summaries = {
      key: [make_summary(seed, key[1], accuracy,
                         best_delta=0.01 if key[1] == 'sgd' else 0.02,
                         num_params=1000 if key[0] == (10, 5) else 5000,
                         num_neurons=list(key[0]),
                         # SGD ignores rho: this seed still belongs with the
                         # others.
                         rho=0.1 if (key[1], seed) == ('sgd', 1) else 0.05)
            for seed, accuracy in enumerate(values)]
      for key, values in accuracies.items()}
  for (width, optimizer), runs in summaries.items():
    if (width, optimizer) == ((40, 20), 'sam'):
      # Three replicas trained side by side: their summaries and the run's
      # index, which must not count as a fourth seed.
      for replica, run in enumerate(runs):
        write(tmp_path / 'replicas' / f'replica_{replica}' / 'summary.json',
              run)
      write(tmp_path / 'replicas' / 'summary.json',
            {'config': runs[0]['config'], 'num_replicas': 3,
             'replica_summaries': [f'replica_{r}/summary.json'
                                   for r in range(3)]})
      continue
    for run in runs:
      name = f'num_neurons={width[0]}_{width[1]},optimizer={optimizer},' \
             f'seed={run["config"]["seed"]}'
      write(tmp_path / name / 'summary.json', run)
  return tmp_path


def test_results_csv_has_one_row_per_setting_with_seed_statistics(
    width_sweep):
  report.write_report(width_sweep, report.load_summaries(width_sweep),
                      'final_test_accuracy')
  rows = read_csv(width_sweep / 'results.csv')
  assert list(rows[0])[:6] == ['num_neurons', 'optimizer', 'n_seeds', 'seeds',
                               'num_params', 'achieved_sparsity']
  by_setting = {(r['num_neurons'], r['optimizer']): r for r in rows}
  assert sorted(by_setting) == [('(10,5)', 'sam'), ('(10,5)', 'sgd'),
                                ('(40,20)', 'sam'), ('(40,20)', 'sgd')]
  expected = {('(10,5)', 'sgd'): (0.82, 0.02, 1000),
              ('(10,5)', 'sam'): (0.86, 0.03, 1000),
              ('(40,20)', 'sgd'): (0.90, 0.0, 5000),
              ('(40,20)', 'sam'): (0.93, 0.02, 5000)}
  for key, (mean, std, num_params) in expected.items():
    row = by_setting[key]
    assert row['n_seeds'] == '3' and row['seeds'] == '0 1 2'
    assert int(row['num_params']) == num_params
    assert float(row['achieved_sparsity']) == 0
    assert float(row['final_test_accuracy_mean']) == pytest.approx(mean)
    assert float(row['final_test_accuracy_std']) == pytest.approx(std,
                                                                  abs=1e-12)
    assert float(row['final_test_loss_mean']) == pytest.approx(1 - mean)
    assert float(row['final_train_accuracy_mean']) == pytest.approx(mean + .05)
    assert float(row['final_train_loss_std']) == pytest.approx(std / 2,
                                                               abs=1e-12)
  # Only what tells settings apart gets a column.
  assert 'rho' not in rows[0] and 'seed' not in rows[0]
  assert 'dataset' not in rows[0]


@pytest.mark.parametrize('metric,gains', [
    ('final_test_accuracy', {'(10,5)': 0.04, '(40,20)': 0.03}),
    ('best_test_accuracy', {'(10,5)': 0.05, '(40,20)': 0.04}),
])
def test_sam_gain_pairs_settings_that_differ_only_in_optimizer(
    width_sweep, metric, gains):
  written = report.write_report(
      width_sweep, report.load_summaries(width_sweep), metric)
  rows = {r['num_neurons']: r for r in read_csv(width_sweep / 'sam_gain.csv')}
  assert rows.keys() == gains.keys()
  # std of the gain = sqrt(std_SAM^2 + std_SGD^2).
  stds = {'(10,5)': math.sqrt(0.03**2 + 0.02**2), '(40,20)': 0.02}
  for width, gain in gains.items():
    row = rows[width]
    assert row['metric'] == metric
    assert row['n_seeds_sgd'] == row['n_seeds_sam'] == '3'
    assert float(row['gain_mean']) == pytest.approx(gain)
    assert float(row['gain_mean']) == pytest.approx(
        float(row['sam_mean']) - float(row['sgd_mean']))
    assert float(row['gain_std']) == pytest.approx(stds[width])
  assert [p.name for p in written] == [
      'results.csv', 'sam_gain.csv', 'accuracy_vs_params.png',
      'sam_gain_vs_params.png']
  for path in written[2:]:
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_sparsity_and_label_noise_get_their_own_figures(tmp_path):
  # One width; sparsity {0, 0.9} x label_noise {0, 0.5} x SGD/SAM x 2 seeds.
  # SAM is exactly 0.01 better; seed 1 is 0.002 better than seed 0.
  for sparsity, measured in ((0.0, 0.0), (0.9, 0.89)):
    for noise in (0.0, 0.5):
      for optimizer in ('sgd', 'sam'):
        for seed in (0, 1):
          accuracy = (0.9 - 0.1 * noise - 0.05 * sparsity + 0.002 * seed +
                      (0.01 if optimizer == 'sam' else 0))
          write(tmp_path / f'{sparsity}-{noise}-{optimizer}-{seed}' /
                'summary.json',
                make_summary(seed, optimizer, accuracy,
                             measured_sparsity=measured, sparsity=sparsity,
                             label_noise=noise, pruner='snip'))
  written = report.write_report(tmp_path, report.load_summaries(tmp_path),
                                'final_test_accuracy')
  assert [p.name for p in written] == [
      'results.csv', 'sam_gain.csv', 'accuracy_vs_sparsity.png',
      'sam_gain_vs_sparsity.png', 'accuracy_vs_label_noise.png',
      'sam_gain_vs_label_noise.png']
  for path in written[2:]:
    assert path.read_bytes().startswith(PNG_MAGIC)

  results = read_csv(tmp_path / 'results.csv')
  assert len(results) == 8
  assert list(results[0])[:3] == ['label_noise', 'sparsity', 'optimizer']
  for row in results:
    assert float(row['achieved_sparsity']) == (
        0.89 if row['sparsity'] == '0.9' else 0)
  gains = read_csv(tmp_path / 'sam_gain.csv')
  assert sorted((g['label_noise'], g['sparsity']) for g in gains) == [
      ('0.0', '0.0'), ('0.0', '0.9'), ('0.5', '0.0'), ('0.5', '0.9')]
  for gain in gains:
    assert float(gain['gain_mean']) == pytest.approx(0.01)
    # Each optimizer's std is 0.002 / sqrt(2); the gain's is 0.002.
    assert float(gain['gain_std']) == pytest.approx(0.002)


def test_command_line_writes_and_lists_the_files_or_fails_in_one_line(
    width_sweep, tmp_path_factory):
  result = run_python(['report.py', str(width_sweep)], check=True)
  for name in ('results.csv', 'sam_gain.csv', 'accuracy_vs_params.png',
               'sam_gain_vs_params.png'):
    assert f'wrote {width_sweep / name}' in result.stdout
  assert 'num_neurons=(10,5): SGD 82.00 ± 2.00  SAM 86.00 ± 3.00  gain ' \
         '+4.00 ± 3.61' in result.stdout

  empty = tmp_path_factory.mktemp('empty')
  result = run_python(['report.py', str(empty)])
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      f'error: no summary.json under {empty}']
