"""report.py on synthetic summaries whose means, intervals, gains and trends
are known, checked against scipy.stats."""

import csv
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from configs import default
import report
from reporting import figures
from reporting import metrics as report_metrics
from reporting import outputs as report_outputs
from reporting import runs as report_runs
from runs import rundir
from sweeps import local
from sweeps import plan
from tests.conftest import REPO
from tests.conftest import run_python

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def make_summary(
    seed,
    optimizer,
    accuracy,
    *,
    best_delta=0.01,
    num_params=1000,
    measured_sparsity=0.0,
    **config,
):
  """A summary.json's content with the fields report.py reads."""
  return {
      'config': {
          'dataset': 'mnist',
          'model': 'mlp',
          'num_neurons': [10, 5],
          'optimizer': optimizer,
          'rho': 0.05,
          'seed': seed,
          'sparsity': 0.0,
          'num_epochs': 10,
          **config,
      },
      'num_params': num_params,
      'sparsity': measured_sparsity,
      'final_test_accuracy': accuracy,
      'best_test_accuracy': accuracy + best_delta,
      'final_test_loss': 1 - accuracy,
      'final_train_loss': 0.5 - accuracy / 2,
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
  accuracies = {
      ((10, 5), 'sgd'): (0.80, 0.82, 0.84),
      ((10, 5), 'sam'): (0.83, 0.86, 0.89),
      ((40, 20), 'sgd'): (0.90, 0.90, 0.90),
      ((40, 20), 'sam'): (0.91, 0.93, 0.95),
  }
  summaries = {
      key: [
          make_summary(
              seed,
              key[1],
              accuracy,
              best_delta=0.01 if key[1] == 'sgd' else 0.02,
              num_params=1000 if key[0] == (10, 5) else 5000,
              num_neurons=list(key[0]),
              # SGD ignores rho: this seed still belongs with the
              # others.
              rho=0.1 if (key[1], seed) == ('sgd', 1) else 0.05,
          )
          for seed, accuracy in enumerate(values)
      ]
      for key, values in accuracies.items()
  }
  for (width, optimizer), runs in summaries.items():
    if (width, optimizer) == ((40, 20), 'sam'):
      # Three replicas trained side by side: their summaries and the run's
      # index, which must not count as a fourth seed.
      for replica, run in enumerate(runs):
        write(
            tmp_path / 'replicas' / f'replica_{replica}' / 'summary.json', run
        )
      write(
          tmp_path / 'replicas' / 'summary.json',
          {
              'config': runs[0]['config'],
              'num_replicas': 3,
              'replica_summaries': [
                  f'replica_{r}/summary.json' for r in range(3)
              ],
          },
      )
      continue
    for run in runs:
      name = (
          f'num_neurons={width[0]}_{width[1]},optimizer={optimizer},'
          f'seed={run["config"]["seed"]}'
      )
      write(tmp_path / name / 'summary.json', run)
  return tmp_path


def test_results_csv_has_one_row_per_setting_with_seed_statistics(width_sweep):
  report.write_report(
      width_sweep,
      report_runs.load_summaries(width_sweep),
      'final_test_accuracy',
  )
  rows = read_csv(width_sweep / 'results.csv')
  assert list(rows[0])[:6] == [
      'num_neurons',
      'optimizer',
      'n_seeds',
      'seeds',
      'num_params',
      'achieved_sparsity',
  ]
  by_setting = {(r['num_neurons'], r['optimizer']): r for r in rows}
  assert sorted(by_setting) == [
      ('(10,5)', 'sam'),
      ('(10,5)', 'sgd'),
      ('(40,20)', 'sam'),
      ('(40,20)', 'sgd'),
  ]
  expected = {
      ('(10,5)', 'sgd'): (0.82, 0.02, 1000),
      ('(10,5)', 'sam'): (0.86, 0.03, 1000),
      ('(40,20)', 'sgd'): (0.90, 0.0, 5000),
      ('(40,20)', 'sam'): (0.93, 0.02, 5000),
  }
  for key, (mean, std, num_params) in expected.items():
    row = by_setting[key]
    assert row['n_seeds'] == '3' and row['seeds'] == '0 1 2'
    assert int(row['num_params']) == num_params
    assert float(row['achieved_sparsity']) == 0
    assert float(row['final_test_accuracy_mean']) == pytest.approx(mean)
    assert float(row['final_test_accuracy_std']) == pytest.approx(
        std, abs=1e-12
    )
    assert float(row['final_test_loss_mean']) == pytest.approx(1 - mean)
    assert float(row['final_train_accuracy_mean']) == pytest.approx(mean + 0.05)
    assert float(row['final_train_loss_std']) == pytest.approx(
        std / 2, abs=1e-12
    )
  # Only what tells settings apart gets a column.
  assert 'rho' not in rows[0] and 'seed' not in rows[0]
  assert 'dataset' not in rows[0]


@pytest.mark.parametrize(
    'metric,gains',
    [
        ('final_test_accuracy', {'(10,5)': 0.04, '(40,20)': 0.03}),
        ('best_test_accuracy', {'(10,5)': 0.05, '(40,20)': 0.04}),
    ],
)
def test_sam_gain_pairs_settings_that_differ_only_in_optimizer(
    width_sweep, metric, gains
):
  written = report.write_report(
      width_sweep, report_runs.load_summaries(width_sweep), metric
  )
  rows = {r['num_neurons']: r for r in read_csv(width_sweep / 'sam_gain.csv')}
  assert rows.keys() == gains.keys()
  # Seeds pair: the per-seed differences are .03 .04 .05 for (10, 5) and
  # .01 .03 .05 for (40, 20), so the paired sd is 0.01 and 0.02 (the
  # metric's offsets, 0.01 for SGD and 0.02 for SAM, shift every seed alike).
  sds = {'(10,5)': 0.01, '(40,20)': 0.02}
  for width, gain in gains.items():
    row = rows[width]
    assert row['metric'] == metric
    assert row['n_seeds_sgd'] == row['n_seeds_sam'] == row['n_pairs'] == '3'
    assert row['gain_ci_method'] == 'paired-t'
    assert float(row['gain_mean']) == pytest.approx(gain)
    assert float(row['gain_mean']) == pytest.approx(
        float(row['sam_mean']) - float(row['sgd_mean'])
    )
    low, high = stats.t.interval(0.95, 2, loc=gain, scale=sds[width] / 3**0.5)
    assert float(row['gain_ci_low']) == pytest.approx(low)
    assert float(row['gain_ci_high']) == pytest.approx(high)
  assert [p.name for p in written] == [
      'results.csv',
      'sam_gain.csv',
      'trend.csv',
      'trend.json',
      'accuracy_vs_params.png',
      'sam_gain_vs_params.png',
  ]
  for path in written[4:]:
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_sparsity_and_label_noise_get_their_own_figures(tmp_path):
  # One width; sparsity {0, 0.9} x label_noise {0, 0.5} x SGD/SAM x 2 seeds.
  # SAM is exactly 0.01 better; seed 1 is 0.002 better than seed 0.
  for sparsity, measured in ((0.0, 0.0), (0.9, 0.89)):
    for noise in (0.0, 0.5):
      for optimizer in ('sgd', 'sam'):
        for seed in (0, 1):
          accuracy = (
              0.9
              - 0.1 * noise
              - 0.05 * sparsity
              + 0.002 * seed
              + (0.01 if optimizer == 'sam' else 0)
          )
          write(
              tmp_path
              / f'{sparsity}-{noise}-{optimizer}-{seed}'
              / 'summary.json',
              make_summary(
                  seed,
                  optimizer,
                  accuracy,
                  measured_sparsity=measured,
                  sparsity=sparsity,
                  label_noise=noise,
                  pruner='snip',
              ),
          )
  written = report.write_report(
      tmp_path, report_runs.load_summaries(tmp_path), 'final_test_accuracy'
  )
  assert [p.name for p in written] == [
      'results.csv',
      'sam_gain.csv',
      'trend.csv',
      'trend.json',
      'accuracy_vs_sparsity.png',
      'sam_gain_vs_sparsity.png',
      'accuracy_vs_label_noise.png',
      'sam_gain_vs_label_noise.png',
  ]
  for path in written[4:]:
    assert path.read_bytes().startswith(PNG_MAGIC)

  results = read_csv(tmp_path / 'results.csv')
  assert len(results) == 8
  assert list(results[0])[:3] == ['label_noise', 'sparsity', 'optimizer']
  for row in results:
    assert float(row['achieved_sparsity']) == (
        0.89 if row['sparsity'] == '0.9' else 0
    )
  gains = read_csv(tmp_path / 'sam_gain.csv')
  assert sorted((g['label_noise'], g['sparsity']) for g in gains) == [
      ('0.0', '0.0'),
      ('0.0', '0.9'),
      ('0.5', '0.0'),
      ('0.5', '0.9'),
  ]
  for gain in gains:
    assert float(gain['gain_mean']) == pytest.approx(0.01)
    # Each optimizer's std is 0.002 / sqrt(2), but the seed's 0.002 cancels
    # in each seed's difference: the paired interval has no width.
    assert float(gain['sgd_std']) == pytest.approx(0.002 / math.sqrt(2))
    assert gain['gain_ci_method'] == 'paired-t'
    assert float(gain['gain_ci_low']) == pytest.approx(0.01, abs=1e-12)
    assert float(gain['gain_ci_high']) == pytest.approx(0.01, abs=1e-12)
  # A trend per curve: against the measured sparsity for each label noise,
  # against label noise for each sparsity.
  trends = read_csv(tmp_path / 'trend.csv')
  assert [(t['x'], t['label_noise'], t['sparsity']) for t in trends] == [
      ('achieved_sparsity', '0.0', ''),
      ('achieved_sparsity', '0.5', ''),
      ('label_noise', '', '0.0'),
      ('label_noise', '', '0.9'),
  ]
  for trend in trends:
    assert trend['method'] == 'ols-paired-seeds'
    assert (trend['n_points'], trend['n_settings']) == ('4', '2')
    assert float(trend['slope']) == pytest.approx(0, abs=1e-12)


def test_command_line_writes_and_lists_the_files_or_fails_in_one_line(
    width_sweep, tmp_path_factory
):
  result = run_python(['report.py', str(width_sweep)], check=True)
  for name in (
      'results.csv',
      'sam_gain.csv',
      'trend.csv',
      'trend.json',
      'accuracy_vs_params.png',
      'sam_gain_vs_params.png',
  ):
    assert f'wrote {width_sweep / name}' in result.stdout
  # Means and 95% t-intervals (t_0.975,2 = 4.303), in percent.
  assert (
      'num_neurons=(10,5): SGD 82.00 [77.03, 86.97]  SAM 86.00 [78.55, '
      '93.45]  gain +4.00 [+1.52, +6.48] paired-t, 3 pairs' in result.stdout
  )
  # Six points: slope = -1 pp over log10(5000) - log10(1000) = 0.699 decade.
  assert re.search(
      r'against log10\(num_params\): OLS slope -1\.43 pp per decade '
      r'\[-\S+, \+\S+\], p=0\.\d+, n=3 paired seeds x 2 widths',
      result.stdout,
  ), result.stdout

  empty = tmp_path_factory.mktemp('empty')
  result = run_python(['report.py', str(empty)])
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      f'error: no summary.json under {empty}'
  ]

  # Nothing to report when no run finished.
  write(
      empty / 'run' / 'summary.json',
      {**make_summary(0, 'sgd', 0.1), 'status': 'diverged'},
  )
  result = run_python(['report.py', str(empty)])
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      f'error: no finished run under {empty} (1 diverged)'
  ]


def write_measured_widths(root, noises, moments):
  """Two widths x `noises` x SGD/SAM x 2 seeds, 50 steps each; analyze.py
  measured the noise-free runs (top eigenvalue width + seed, trace 3 x
  width, and the spectral `moments` unless None)."""
  for width in (10, 40):
    for noise in noises:
      for optimizer in ('sgd', 'sam'):
        for seed in (0, 1):
          run = root / f'{width}-{noise}-{optimizer}-{seed}'
          write(
              run / 'summary.json',
              dict(
                  make_summary(
                      seed,
                      optimizer,
                      0.8 + (optimizer == 'sam') * 0.01,
                      num_params=100 * width,
                      num_neurons=[width],
                      label_noise=noise,
                  ),
                  steps=50,
              ),
          )
          hessian = {'top_eigenvalues': [width + seed], 'trace': 3.0 * width}
          if moments:
            hessian['moments'] = moments
          if noise == 0:
            write(
                run / 'analysis' / 'analysis.json',
                {'step': 50, 'hessian': hessian},
            )


def test_hessian_figures_only_along_axes_analyze_py_measured(tmp_path):
  # Two widths x label noise {0, 0.4} x SGD/SAM x 2 seeds; analyze.py
  # measured only the noise-free runs, so there is a Hessian figure against
  # the parameters and none against label noise (one point per curve).
  write_measured_widths(tmp_path, (0.0, 0.4), [1.0, 4.0])
  written = report.write_report(
      tmp_path, report_runs.load_summaries(tmp_path), 'final_test_accuracy'
  )
  names = [p.name for p in written]
  assert 'hessian_vs_params.png' in names
  assert 'accuracy_vs_label_noise.png' in names
  assert 'hessian_vs_label_noise.png' not in names
  rows = read_csv(tmp_path / 'results.csv')
  measured = [r for r in rows if r['label_noise'] == '0.0']
  assert {float(r['hessian_top_eigenvalue_mean']) for r in measured} == {
      10.5,
      40.5,
  }
  assert all(
      r['hessian_trace_mean'] == '' for r in rows if r['label_noise'] == '0.4'
  )


def write_runs(root, accuracies, **config):
  """One run directory per (setting, seed): `accuracies` maps
  (num_neurons, optimizer) to {seed: final test accuracy}; 1000 parameters
  per hidden unit of the first layer."""
  for (width, optimizer), by_seed in accuracies.items():
    for seed, accuracy in by_seed.items():
      write(
          root / f'{width[0]}_{width[1]}-{optimizer}-{seed}' / 'summary.json',
          make_summary(
              seed,
              optimizer,
              accuracy,
              num_params=1000 * width[0],
              num_neurons=list(width),
              **config,
          ),
      )


def read_csv_after_report(root, name):
  """The rows of the CSV `name` that a report on `root` writes."""
  report.write_report(
      root, report_runs.load_summaries(root), 'final_test_accuracy'
  )
  return read_csv(root / name)


def gain_row(root):
  """The single row of sam_gain.csv after a report."""
  (row,) = read_csv_after_report(root, 'sam_gain.csv')
  return row


# Made-up accuracies of 5 seeds: SAM follows SGD's seed-to-seed spread
# (shared initialization, data order and labels) plus a small gain.
SGD_5 = (0.712, 0.745, 0.690, 0.731, 0.702)
SAM_5 = (0.721, 0.751, 0.703, 0.733, 0.718)


def test_paired_interval_matches_scipy_ttest_rel(tmp_path):
  write_runs(
      tmp_path,
      {
          ((10, 5), 'sgd'): dict(enumerate(SGD_5)),
          ((10, 5), 'sam'): dict(enumerate(SAM_5)),
      },
  )
  row = gain_row(tmp_path)
  differences = np.subtract(SAM_5, SGD_5)
  expected = stats.ttest_rel(SAM_5, SGD_5)
  low, high = expected.confidence_interval(0.95)
  assert (row['gain_ci_method'], row['n_pairs']) == ('paired-t', '5')
  assert float(row['gain_mean']) == pytest.approx(differences.mean())
  assert float(row['gain_ci_low']) == pytest.approx(low)
  assert float(row['gain_ci_high']) == pytest.approx(high)
  assert (low, high) == pytest.approx(
      stats.t.interval(
          0.95, 4, loc=differences.mean(), scale=stats.sem(differences)
      )
  )
  assert float(row['gain_p_value']) == pytest.approx(expected.pvalue)
  # Pairing removes the seeds' shared spread: Welch's interval on the same
  # runs would contain 0.
  assert (
      stats.ttest_ind(SAM_5, SGD_5, equal_var=False)
      .confidence_interval(0.95)
      .low
      < 0
      < low
  )

  # Each accuracy's interval in results.csv: the t-interval over seeds.
  results = {r['optimizer']: r for r in read_csv(tmp_path / 'results.csv')}
  for optimizer, values in (('sgd', SGD_5), ('sam', SAM_5)):
    low, high = stats.t.interval(
        0.95, 4, loc=np.mean(values), scale=stats.sem(values)
    )
    result = results[optimizer]
    assert float(result['final_test_accuracy_ci_low']) == pytest.approx(low)
    assert float(result['final_test_accuracy_ci_high']) == pytest.approx(high)
    assert result['n_excluded'] == '0'


@pytest.mark.parametrize(
    'sgd_seeds,sam_seeds,method,paired_seeds',
    [
        # No seed in common: Welch's interval over all runs.
        ((0, 1, 2, 3, 4), (10, 11, 12), 'welch-t', ()),
        # Seeds 0-2 in common: paired over those, the others left out.
        ((0, 1, 2, 3, 4), (0, 1, 2), 'paired-t', (0, 1, 2)),
        # A single pair: a mean, no interval.
        ((0,), (0,), 'paired-t', (0,)),
    ],
)
def test_gain_pairs_the_seeds_both_ran_else_falls_back_to_welch(
    tmp_path, sgd_seeds, sam_seeds, method, paired_seeds
):
  sgd = {seed: SGD_5[i] for i, seed in enumerate(sgd_seeds)}
  sam = {seed: SAM_5[i] for i, seed in enumerate(sam_seeds)}
  write_runs(tmp_path, {((10, 5), 'sgd'): sgd, ((10, 5), 'sam'): sam})
  row = gain_row(tmp_path)
  assert row['gain_ci_method'] == method
  assert row['n_pairs'] == str(len(paired_seeds))
  assert (row['n_seeds_sgd'], row['n_seeds_sam']) == (
      str(len(sgd_seeds)),
      str(len(sam_seeds)),
  )
  if method == 'welch-t':
    expected = stats.ttest_ind(
        list(sam.values()), list(sgd.values()), equal_var=False
    )
    mean = np.mean(list(sam.values())) - np.mean(list(sgd.values()))
  else:
    pairs = ([sam[s] for s in paired_seeds], [sgd[s] for s in paired_seeds])
    expected = stats.ttest_rel(*pairs) if len(paired_seeds) > 1 else None
    mean = np.mean(np.subtract(*pairs))
  assert float(row['gain_mean']) == pytest.approx(mean)
  if expected is None:
    assert math.isnan(float(row['gain_ci_low']))
    assert math.isnan(float(row['gain_ci_high']))
    assert math.isnan(float(row['gain_p_value']))
  else:
    low, high = expected.confidence_interval(0.95)
    assert float(row['gain_ci_low']) == pytest.approx(low)
    assert float(row['gain_ci_high']) == pytest.approx(high)
    assert float(row['gain_p_value']) == pytest.approx(expected.pvalue)


# Five widths; num_params = 1000 * first layer.
WIDTHS = ((1, 1), (3, 1), (10, 5), (30, 10), (100, 50))


def trend_sweep(root, gain, noise):
  """SGD/SAM at WIDTHS x 4 seeds: SGD at 0.8 + 0.01 * seed, SAM at SGD +
  gain(log10 num_params) + noise[seed]."""
  accuracies = {}
  for width in WIDTHS:
    log_params = math.log10(1000 * width[0])
    sgd = {seed: 0.8 + 0.01 * seed for seed in range(4)}
    accuracies[width, 'sgd'] = sgd
    accuracies[width, 'sam'] = {
        seed: sgd[seed] + gain(log_params) + noise[seed] for seed in range(4)
    }
  write_runs(root, accuracies)
  (trend,) = read_csv_after_report(root, 'trend.csv')
  return trend


def test_trend_matches_scipy_linregress_on_the_paired_seeds(tmp_path):
  noise = (0.004, -0.007, 0.002, 0.006)
  trend = trend_sweep(tmp_path, lambda x: 0.003 * x**2, noise)
  # One point per (width, seed): x = log10(num_params), y = SAM - SGD.
  gains = read_csv(tmp_path / 'sam_gain.csv')
  x = [math.log10(int(g['num_params'])) for g in gains for _ in noise]
  y = [0.003 * xi**2 + n for xi, n in zip(x, noise * len(gains))]
  expected = stats.linregress(x, y)
  half_width = stats.t.ppf(0.975, len(x) - 2) * expected.stderr
  assert trend['x'] == 'log10(num_params)'
  assert trend['metric'] == 'final_test_accuracy'
  assert trend['method'] == 'ols-paired-seeds'
  assert (trend['n_points'], trend['n_settings']) == ('20', '5')
  assert float(trend['slope']) == pytest.approx(expected.slope)
  assert float(trend['intercept']) == pytest.approx(expected.intercept)
  assert float(trend['slope_ci_low']) == pytest.approx(
      expected.slope - half_width
  )
  assert float(trend['slope_ci_high']) == pytest.approx(
      expected.slope + half_width
  )
  assert float(trend['p_value']) == pytest.approx(expected.pvalue)
  # trend.json holds the same numbers.
  (record,) = json.loads((tmp_path / 'trend.json').read_text())
  assert record['curve'] == {}
  assert record['slope'] == pytest.approx(expected.slope)
  assert record['p_value'] == pytest.approx(expected.pvalue)
  # The gain figure, with the fit, is drawn.
  assert (
      (tmp_path / 'sam_gain_vs_params.png').read_bytes().startswith(PNG_MAGIC)
  )


@pytest.mark.parametrize('slope,significant', [(0.01, True), (0.0, False)])
def test_trend_recovers_a_known_slope(tmp_path, slope, significant):
  # The noise sums to 0 at every width, so OLS finds the slope exactly: with
  # 1 pp/decade the p-value is tiny, with no trend it is near 1.
  trend = trend_sweep(
      tmp_path, lambda x: 0.02 + slope * x, (0.003, -0.003, 0.001, -0.001)
  )
  assert float(trend['slope']) == pytest.approx(slope, abs=1e-12)
  assert float(trend['slope_ci_low']) < slope < float(trend['slope_ci_high'])
  if significant:
    assert float(trend['p_value']) < 1e-6
  else:
    assert float(trend['p_value']) > 0.9


def test_trend_without_paired_seeds_regresses_the_setting_means(tmp_path):
  # SAM ran seeds 10-12, SGD seeds 0-2: one point per width, its Welch mean.
  accuracies = {}
  for index, width in enumerate(WIDTHS[:4]):
    accuracies[width, 'sgd'] = {s: 0.80 + 0.01 * s for s in range(3)}
    gain = 0.004 * index**1.5
    accuracies[width, 'sam'] = {
        s: 0.80 + 0.01 * (s - 10) + gain for s in range(10, 13)
    }
  write_runs(tmp_path, accuracies)
  gains = read_csv_after_report(tmp_path, 'sam_gain.csv')
  assert {g['gain_ci_method'] for g in gains} == {'welch-t'}
  expected = stats.linregress(
      [math.log10(int(g['num_params'])) for g in gains],
      [float(g['gain_mean']) for g in gains],
  )
  (trend,) = read_csv(tmp_path / 'trend.csv')
  assert trend['method'] == 'ols-setting-means'
  assert (trend['n_points'], trend['n_settings']) == ('4', '4')
  assert float(trend['slope']) == pytest.approx(expected.slope)
  assert float(trend['p_value']) == pytest.approx(expected.pvalue)


def test_runs_that_did_not_finish_are_excluded_and_listed(width_sweep, capsys):
  before = read_csv_after_report(width_sweep, 'sam_gain.csv')
  # Its loss became non-finite in the first epoch: no final numbers.
  diverged = make_summary(3, 'sam', 0.1, num_neurons=[10, 5])
  diverged.update(
      {key: None for key in diverged if key.startswith(('final_', 'best_'))},
      status='diverged',
      sparsity=None,
  )
  write(width_sweep / 'diverged' / 'summary.json', diverged)
  # A replica stopped because another one diverged, and the index of its run
  # (skipped like any index).
  incomplete = make_summary(
      4, 'sgd', 0.5, num_params=5000, num_neurons=[40, 20]
  )
  incomplete['status'] = 'incomplete'
  write(width_sweep / 'stopped' / 'replica_0' / 'summary.json', incomplete)
  write(
      width_sweep / 'stopped' / 'summary.json',
      {
          'config': incomplete['config'],
          'status': 'diverged',
          'replica_summaries': ['replica_0/summary.json'],
      },
  )
  # An older summary without a status: finished.
  assert 'status' not in json.loads(
      (
          width_sweep / 'num_neurons=10_5,optimizer=sgd,seed=0' / 'summary.json'
      ).read_text()
  )
  capsys.readouterr()

  after = read_csv_after_report(width_sweep, 'sam_gain.csv')
  assert after == before
  printed = capsys.readouterr().out.splitlines()
  assert printed[:3] == [
      f'not used (diverged): {width_sweep / "diverged"}',
      f'not used (incomplete): {width_sweep / "stopped" / "replica_0"}',
      'runs not used: 2',
  ]
  results = {
      (r['num_neurons'], r['optimizer']): r
      for r in read_csv(width_sweep / 'results.csv')
  }
  assert {k: r['n_excluded'] for k, r in results.items()} == {
      ('(10,5)', 'sam'): '1',
      ('(10,5)', 'sgd'): '0',
      ('(40,20)', 'sam'): '0',
      ('(40,20)', 'sgd'): '1',
  }
  assert {r['n_seeds'] for r in results.values()} == {'3'}


def test_validation_accuracies_are_reported_where_every_run_has_them(tmp_path):
  # SGD and SAM x 3 seeds; validation accuracy = test accuracy - 0.1 (final)
  # and - 0.05 (best).
  for seed in range(3):
    for optimizer, accuracy in (
        ('sgd', 0.80 + 0.02 * seed),
        ('sam', 0.83 + 0.03 * seed),
    ):
      write(
          tmp_path / f'optimizer={optimizer},seed={seed}' / 'summary.json',
          {
              **make_summary(seed, optimizer, accuracy),
              'final_validation_accuracy': accuracy - 0.1,
              'best_validation_accuracy': accuracy - 0.05,
          },
      )
  report.write_report(
      tmp_path, report_runs.load_summaries(tmp_path), 'best_validation_accuracy'
  )
  rows = {r['optimizer']: r for r in read_csv(tmp_path / 'results.csv')}
  assert float(rows['sgd']['final_validation_accuracy_mean']) == (
      pytest.approx(0.72)
  )
  assert float(rows['sam']['best_validation_accuracy_mean']) == (
      pytest.approx(0.81)
  )
  [gain] = read_csv(tmp_path / 'sam_gain.csv')
  assert gain['metric'] == 'best_validation_accuracy'
  assert float(gain['gain_mean']) == pytest.approx(0.04)
  # One more run, without a validation split: no validation columns, and
  # the validation metric is refused in one line.
  write(
      tmp_path / 'optimizer=sgd,seed=3' / 'summary.json',
      make_summary(3, 'sgd', 0.9),
  )
  report.write_report(
      tmp_path, report_runs.load_summaries(tmp_path), 'final_test_accuracy'
  )
  assert (
      'final_validation_accuracy_mean'
      not in read_csv(tmp_path / 'results.csv')[0]
  )
  result = run_python(
      ['report.py', str(tmp_path), '--metric=final_validation_accuracy']
  )
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1] == (
      'error: --metric=final_validation_accuracy needs every run trained '
      'with validation_fraction > 0, and some runs have no validation split'
  )


def test_average_precision_of_a_multilabel_set_is_reported_and_compared(
    tmp_path,
):
  # ogbg-molpcba-like runs: SGD and SAM x 3 seeds, SAM 0.02 higher in test
  # mean average precision.
  for seed in range(3):
    for optimizer, precision in (
        ('sgd', 0.20 + 0.01 * seed),
        ('sam', 0.22 + 0.01 * seed),
    ):
      write(
          tmp_path / f'optimizer={optimizer},seed={seed}' / 'summary.json',
          {
              **make_summary(seed, optimizer, 0.98, dataset='ogbg_molpcba'),
              'final_test_average_precision': precision,
              'best_test_average_precision': precision + 0.01,
          },
      )
  report.write_report(
      tmp_path,
      report_runs.load_summaries(tmp_path),
      'final_test_average_precision',
  )
  rows = {r['optimizer']: r for r in read_csv(tmp_path / 'results.csv')}
  assert float(rows['sam']['best_test_average_precision_mean']) == (
      pytest.approx(0.24)
  )
  [gain] = read_csv(tmp_path / 'sam_gain.csv')
  assert gain['metric'] == 'final_test_average_precision'
  assert float(gain['gain_mean']) == pytest.approx(0.02)
  with pytest.raises(ValueError, match='needs every run trained with valid'):
    report.write_report(
        tmp_path,
        report_runs.load_summaries(tmp_path),
        'final_validation_average_precision',
    )
  # A classification run has no precision to compare.
  write(
      tmp_path / 'optimizer=sgd,seed=9' / 'summary.json',
      make_summary(9, 'sgd', 0.9),
  )
  with pytest.raises(ValueError, match='needs every run to have measured'):
    report.write_report(
        tmp_path,
        report_runs.load_summaries(tmp_path),
        'final_test_average_precision',
    )


def _run_directory(path, summary):
  """A run's directory as main.py leaves it before its summary: its
  config.json (the run's complete config)."""
  config = {**default.get_config().to_dict(), **summary['config']}
  write(path / 'config.json', config)
  return path


def test_runs_without_a_summary_are_listed_with_the_reason(width_sweep, capsys):
  # One width's SAM runs lost their summaries: each is listed, with what
  # its directory says of it, and the statistics are of the others.
  runs = sorted(width_sweep.glob('num_neurons=10_5,optimizer=sam,*'))
  summaries = [json.loads((r / 'summary.json').read_text()) for r in runs]
  for run in runs:
    (run / 'summary.json').unlink()
  stopped, failed, running = (
      _run_directory(r, s) for r, s in zip(runs, summaries)
  )
  (stopped / 'checkpoints' / '120').mkdir(parents=True)
  # A real process that failed, launched as sweep.py launches a run.
  outcome = local.execute(
      plan.Run(
          failed.name,
          failed,
          [
              sys.executable,
              '-c',
              'print("error: no such dataset");' 'raise SystemExit(1)',
          ],
          None,
      ),
      {},
      local.Children(),
  )
  assert outcome.status == local.FAILED
  lock = rundir.WorkdirLock(running)  # As a training process holds it.
  never = _run_directory(width_sweep / 'queued', summaries[0])
  try:
    capsys.readouterr()
    written = report.write_report(
        width_sweep,
        report_runs.load_summaries(width_sweep),
        'final_test_accuracy',
    )
    note = report_outputs.unused_note(
        report_runs.unused_runs(  # pylint: disable=protected-access
            width_sweep, report_runs.load_summaries(width_sweep)
        )
    )
  finally:
    lock.release()
  printed = capsys.readouterr().out.splitlines()
  assert printed[:5] == [
      f'not used (stopped at step 120 with a checkpoint (the same command '
      f'resumes it)): {stopped}',
      f'not used (failed: error: no such dataset): {failed}',
      f'not used (running (process {os.getpid()})): {running}',
      f'not used (not trained): {never}',
      'runs not used: 4',
  ]
  # The figures' captions say so.
  assert note == [
      'Not used: 4 runs (1 failed, 1 not trained, 1 running, '
      '1 stopped), listed by report.py; the statistics are of '
      'the others.'
  ]
  rows = {
      (r['num_neurons'], r['optimizer']): r
      for r in read_csv(width_sweep / 'results.csv')
  }
  assert ('(10,5)', 'sam') not in rows
  assert rows[('(10,5)', 'sgd')]['n_excluded'] == '0'
  assert width_sweep / 'sam_gain_vs_params.png' in written

  # A report that must cover the whole grid refuses, in one line, and
  # writes nothing.
  for path in written:
    path.unlink()
  result = run_python(['report.py', '--require_complete', str(width_sweep)])
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      f'error: 4 runs under {width_sweep} cannot be used (listed above) and '
      '--require_complete is set'
  ]
  assert not list(width_sweep.glob('*.csv'))


def test_a_figure_that_cannot_be_drawn_is_skipped_and_no_stale_one_stays(
    width_sweep, monkeypatch, capsys
):
  report.write_report(
      width_sweep,
      report_runs.load_summaries(width_sweep),
      'final_test_accuracy',
  )
  assert (width_sweep / 'sam_gain_vs_params.png').exists()

  def cannot(*args):
    raise ValueError('Data cannot be log-scaled because all values are <= 0.')

  monkeypatch.setattr(figures, 'plot_gain', cannot)
  capsys.readouterr()
  written = report.write_report(
      width_sweep,
      report_runs.load_summaries(width_sweep),
      'final_test_accuracy',
  )
  assert (
      'skipped sam_gain_vs_params.png: ValueError: Data cannot be '
      'log-scaled because all values are <= 0.' in capsys.readouterr().out
  )
  # The tables and the other figure are written; the earlier gain figure,
  # which no longer matches them, is gone.
  assert {p.name for p in written} == {
      'results.csv',
      'sam_gain.csv',
      'trend.csv',
      'trend.json',
      'accuracy_vs_params.png',
  }
  assert not (width_sweep / 'sam_gain_vs_params.png').exists()


def test_hessians_without_spectral_moments_are_reported(tmp_path):
  # analyze.py with analysis.slq_probes=0: top eigenvalue and trace only.
  write_measured_widths(tmp_path, (0.0,), None)
  written = report.write_report(
      tmp_path, report_runs.load_summaries(tmp_path), 'final_test_accuracy'
  )
  assert tmp_path / 'hessian_vs_params.png' in written
  rows = read_csv(tmp_path / 'results.csv')
  assert {float(r['hessian_top_eigenvalue_mean']) for r in rows} == {10.5, 40.5}
  assert 'hessian_spread_mean' not in rows[0]


def test_identical_runs_count_once(tmp_path, capsys):
  # An optimizer x rho grid: SGD, which does not read rho, trained once per
  # rho with the same seeds (sweeps before they shared such runs).
  for rho in (0.02, 0.1):
    for seed, (sgd, sam) in enumerate(zip(SGD_5[:3], SAM_5[:3])):
      for optimizer, accuracy in (('sgd', sgd), ('sam', sam + rho)):
        write(
            tmp_path / f'{optimizer}-{rho}-{seed}' / 'summary.json',
            make_summary(seed, optimizer, accuracy, rho=rho),
        )
  capsys.readouterr()
  rows = read_csv_after_report(tmp_path, 'sam_gain.csv')
  printed = capsys.readouterr().out
  assert printed.count('counted once: ') == 3
  assert (
      f'counted once: {tmp_path / "sgd-0.1-0"} is the same run as '
      f'{tmp_path / "sgd-0.02-0"} (same setting and seed)'
  ) in printed
  for row in rows:
    assert (row['n_seeds_sgd'], row['n_pairs']) == ('3', '3')
    assert math.isfinite(float(row['gain_p_value']))


def test_a_closed_pipe_ends_the_output_not_the_report(width_sweep):
  result = subprocess.run(
      f'{sys.executable} report.py {width_sweep} | head -1',
      shell=True,
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode == 0 and result.stderr == ''
  assert len(result.stdout.splitlines()) == 1
  assert (width_sweep / 'sam_gain_vs_params.png').exists()


def test_fine_tunes_of_one_pretraining_setting_pool_as_seeds(tmp_path):
  # Three SGD pretrainings (seeds 0 to 2), each fine-tuned with SGD and with
  # SAM, at fine-tuning seed 0: three pairs of one setting, not three
  # settings of one run each.
  gains = (0.010, 0.020, 0.015)
  for pretrain_seed, gain in enumerate(gains):
    source = tmp_path / 'pretrain' / f'optimizer=sgd,seed={pretrain_seed}'
    write(
        source / 'config.json',
        {
            **default.get_config().to_dict(),
            'optimizer': 'sgd',
            'seed': pretrain_seed,
            'num_epochs': 50,
        },
    )
    for optimizer in ('sgd', 'sam'):
      write(
          tmp_path
          / 'finetune'
          / f'{optimizer}-{pretrain_seed}'
          / 'summary.json',
          make_summary(
              0,
              optimizer,
              0.8 + gain * (optimizer == 'sam'),
              init_from=str(source),
          ),
      )
  root = tmp_path / 'finetune'
  [row] = read_csv_after_report(root, 'sam_gain.csv')
  assert (row['n_seeds_sgd'], row['n_seeds_sam'], row['n_pairs']) == (
      '3',
      '3',
      '3',
  )
  assert float(row['gain_mean']) == pytest.approx(np.mean(gains))
  [sgd] = [r for r in read_csv(root / 'results.csv') if r['optimizer'] == 'sgd']
  assert sgd['seeds'] == '(0, 0) (1, 0) (2, 0)'


def test_every_sam_variant_is_paired_with_sgd_and_gets_its_own_curve(
    tmp_path,
):
  # SGD at 0.8 + 0.01 * seed; each variant adds its own constant gain.
  gains = {'sam': 0.01, 'gsam': 0.03, 'vasso': -0.02}
  for width in WIDTHS[:3]:
    for seed in range(3):
      sgd = 0.8 + 0.01 * seed
      write(
          tmp_path / f'{width[0]}-sgd-{seed}' / 'summary.json',
          make_summary(
              seed,
              'sgd',
              sgd,
              num_params=1000 * width[0],
              num_neurons=list(width),
          ),
      )
      for variant, gain in gains.items():
        write(
            tmp_path / f'{width[0]}-{variant}-{seed}' / 'summary.json',
            make_summary(
                seed,
                'sam',
                sgd + gain,
                num_params=1000 * width[0],
                num_neurons=list(width),
                sam_variant=variant,
            ),
        )
  rows = read_csv_after_report(tmp_path, 'sam_gain.csv')
  assert len(rows) == 3 * len(gains)
  for row in rows:
    assert float(row['gain_mean']) == pytest.approx(gains[row['sam_variant']])
  trends = read_csv(tmp_path / 'trend.csv')
  assert sorted(t['sam_variant'] for t in trends) == sorted(gains)
  for trend in trends:
    assert float(trend['slope']) == pytest.approx(0, abs=1e-9)
  # Drawn as one gain curve per variant (the curves the trends fit).
  assert (tmp_path / 'sam_gain_vs_params.png').read_bytes()[:8] == PNG_MAGIC


def test_a_loss_metric_is_reported_where_lower_is_better(tmp_path, capsys):
  # Regression runs declare one metric, the loss, which ranks their epochs:
  # the default metric is then the final test loss, SAM - SGD below 0 means
  # SAM is better, and nothing is read in percent.
  declared = {
      'primary_metric': 'loss',
      'metrics': [
          {'name': 'loss', 'higher_is_better': False, 'percent': False}
      ],
  }
  losses = {'sgd': (0.30, 0.32, 0.34), 'sam': (0.20, 0.21, 0.25)}
  for optimizer, values in losses.items():
    for seed, loss in enumerate(values):
      summary = make_summary(seed, optimizer, 0.0, dataset='sparse_regression')
      summary = {
          k: v for k, v in summary.items() if 'accuracy' not in k
      } | declared
      summary.update(
          final_test_loss=loss, best_test_loss=loss - 0.01, final_train_loss=0
      )
      write(tmp_path / f'{optimizer},seed={seed}' / 'summary.json', summary)
  written = report.write_report(tmp_path, report_runs.load_summaries(tmp_path))
  [gain] = read_csv(tmp_path / 'sam_gain.csv')
  assert gain['metric'] == 'final_test_loss'
  differences = np.subtract(losses['sam'], losses['sgd'])
  assert float(gain['gain_mean']) == pytest.approx(differences.mean())
  interval = stats.t.interval(
      0.95, 2, differences.mean(), stats.sem(differences)
  )
  assert float(gain['gain_ci_low']) == pytest.approx(interval[0])
  row = read_csv(tmp_path / 'results.csv')[0]
  assert {'final_test_loss_mean', 'best_test_loss_mean'} <= set(row)
  assert not any('accuracy' in column for column in row)
  out = capsys.readouterr().out
  # Four digits, not percent: -0.1 = mean(-0.1, -0.11, -0.09).
  assert 'SAM - SGD, final_test_loss (mean [95% CI] over seeds):' in out
  assert 'SGD 0.32 [' in out and 'gain -0.1 [' in out
  assert not any('accuracy' in path.name for path in written)
  info = report_metrics.describe(
      'best_test_loss', list(report_runs.load_summaries(tmp_path).values())
  )
  assert (info.scale, info.higher_is_better) == (1, False)
  assert info.label == 'best test loss (lower is better)'
  with pytest.raises(ValueError, match='not a metric of these runs'):
    report.write_report(
        tmp_path, report_runs.load_summaries(tmp_path), 'final_test_accuracy'
    )
  # In log10: the gain is the mean over seeds of log10(SAM / SGD).
  report.write_report(
      tmp_path, report_runs.load_summaries(tmp_path), log10=True
  )
  [gain] = read_csv(tmp_path / 'sam_gain.csv')
  assert gain['metric'] == 'log10_final_test_loss'
  ratios = np.log10(np.divide(losses['sam'], losses['sgd']))
  assert float(gain['gain_mean']) == pytest.approx(ratios.mean())
  assert float(gain['gain_ci_high']) == pytest.approx(
      stats.t.interval(0.95, 2, ratios.mean(), stats.sem(ratios))[1]
  )
  write(
      tmp_path / 'sgd,seed=9' / 'summary.json',
      {**summary, 'config': {**summary['config'], 'seed': 9}}
      | {'final_test_loss': 0.0},
  )
  with pytest.raises(ValueError, match='needs final_test_loss > 0'):
    report.write_report(
        tmp_path, report_runs.load_summaries(tmp_path), log10=True
    )


def test_rho_is_an_axis_along_which_sgd_is_a_level(tmp_path):
  # SAM at three rhos, SGD once (it ignores rho); SAM's gain at rho r is
  # 0.01 * log10(r / 0.01) + seed noise shared with SGD.
  for seed in range(3):
    write(
        tmp_path / f'sgd,seed={seed}' / 'summary.json',
        make_summary(seed, 'sgd', 0.80 + 0.01 * seed),
    )
    for rho in (0.01, 0.1, 1.0):
      accuracy = 0.80 + 0.01 * seed + 0.01 * np.log10(rho / 0.01)
      write(
          tmp_path / f'sam,rho={rho},seed={seed}' / 'summary.json',
          make_summary(seed, 'sam', accuracy, rho=rho),
      )
  written = report.write_report(tmp_path, report_runs.load_summaries(tmp_path))
  names = {path.name for path in written}
  assert {'accuracy_vs_rho.png', 'sam_gain_vs_rho.png'} <= names
  [trend] = json.loads((tmp_path / 'trend.json').read_text())
  assert trend['x'] == 'log10(rho)'
  assert trend['slope'] == pytest.approx(0.01)


def test_runs_ranked_by_different_metrics_need_a_metric(tmp_path):
  # A classification run and a regression run: no default metric.
  write(tmp_path / 'a' / 'summary.json', make_summary(0, 'sgd', 0.9))
  regression = {
      **make_summary(0, 'sam', 0.9, dataset='sparse_regression'),
      'primary_metric': 'loss',
      'metrics': [
          {'name': 'loss', 'higher_is_better': False, 'percent': False}
      ],
  }
  write(tmp_path / 'b' / 'summary.json', regression)
  with pytest.raises(ValueError, match='rank their epochs by different'):
    report.write_report(tmp_path, report_runs.load_summaries(tmp_path))


def test_keys_a_variant_does_not_read_neither_split_nor_label_it(
    tmp_path, capsys
):
  # As a sweep of variants writes them: every run carries every variant's
  # keys, each variant its own rho and its own key set away from the
  # default (RWP's sigma), and the SAM runs of one seed differ in RWP's
  # sigma, which SAM does not read. SGD sits beside them once.
  for seed in range(3):
    sgd = 0.8 + 0.01 * seed
    write(
        tmp_path / f'sgd-{seed}' / 'summary.json',
        make_summary(seed, 'sgd', sgd, sam_rwp_sigma=0.01),
    )
    write(
        tmp_path / f'sam-{seed}' / 'summary.json',
        make_summary(
            seed,
            'sam',
            sgd + 0.02,
            rho=0.1,
            sam_variant='sam',
            sam_rwp_sigma=0.01 * (1 + seed),
        ),
    )
    write(
        tmp_path / f'rwp-{seed}' / 'summary.json',
        make_summary(
            seed,
            'sam',
            sgd + 0.01,
            rho=0.05,
            sam_variant='rwp',
            sam_rwp_sigma=0.05,
        ),
    )
  written = report.write_report(tmp_path, report_runs.load_summaries(tmp_path))
  gains = {
      row['sam_variant']: row for row in read_csv(tmp_path / 'sam_gain.csv')
  }
  assert sorted(gains) == ['rwp', 'sam']
  # SAM's three seeds are one setting, paired with SGD's three.
  assert gains['sam']['n_pairs'] == '3'
  assert float(gains['sam']['gain_mean']) == pytest.approx(0.02)
  assert float(gains['rwp']['gain_mean']) == pytest.approx(0.01)
  out = capsys.readouterr().out
  assert 'rho=0.1, sam_variant=sam:' in out
  assert 'rho=0.05, sam_variant=rwp:' in out
  assert 'sam_rwp_sigma' not in out
  # SGD's level sits beside the variants' rhos.
  assert 'accuracy_vs_rho.png' in {path.name for path in written}
