"""The linear rate of convergence (reporting/rates.py) against
scipy.stats.linregress, and report.py --rate_window on summaries whose
rates are known."""

import csv
import math

import numpy as np
import pytest
from scipy import stats

import report
from reporting import rates
from reporting import runs as report_runs
from tests.test_report import make_summary
from tests.test_report import PNG_MAGIC
from tests.test_report import write


def test_the_rate_is_minus_the_slope_of_the_log_loss():
  rng = np.random.default_rng(0)
  steps = np.array([10, 30, 100, 300, 1000, 3000])
  losses = 2.0 * np.exp(-0.002 * steps + rng.normal(0, 0.05, steps.size))
  fit = rates.fit(steps, losses)
  reference = stats.linregress(steps, np.log(losses))
  half_width = stats.t.ppf(0.975, steps.size - 2) * reference.stderr
  assert fit.rate == pytest.approx(-reference.slope)
  assert fit.low == pytest.approx(-reference.slope - half_width)
  assert fit.high == pytest.approx(-reference.slope + half_width)
  assert fit.low < 0.002 < fit.high
  assert (fit.points, fit.first_step, fit.last_step) == (6, 10, 3000)


@pytest.mark.parametrize(
    'window,message',
    [('100', 'not FIRST:LAST'), ('5:2', '0 <= FIRST < LAST'), ('a:b', 'FIRST')],
)
def test_bad_windows_are_one_line_errors(window, message):
  with pytest.raises(ValueError, match=message):
    rates.parse_window(window)


def converging_summary(seed, optimizer, rate, num_params):
  """A run whose training loss falls exactly as exp(-rate * step) from
  step 10 on (flat before: the fit must ignore steps outside the window)."""
  summary = make_summary(seed, optimizer, 0.9, num_params=num_params)
  steps = [0, 1, 3, 10, 30, 100, 300, 1000]
  summary['step_evals'] = [
      {'step': s, 'train_loss': math.exp(-rate * max(s, 10)), 'test_loss': 1}
      for s in steps
  ]
  return summary


def test_report_compares_the_rates_of_sam_and_sgd(tmp_path, capsys):
  # Two widths; SAM converges faster than SGD, more so when wider.
  true_rates = {
      (1000, 'sgd'): [0.010, 0.011, 0.012],
      (1000, 'sam'): [0.012, 0.013, 0.014],
      (5000, 'sgd'): [0.010, 0.010, 0.010],
      (5000, 'sam'): [0.015, 0.016, 0.017],
  }
  for (params, optimizer), values in true_rates.items():
    width = [10, 5] if params == 1000 else [40, 20]
    for seed, rate in enumerate(values):
      summary = converging_summary(seed, optimizer, rate, params)
      summary['config']['num_neurons'] = width
      write(
          tmp_path / f'{optimizer},w={params},seed={seed}' / 'summary.json',
          summary,
      )
  written = report.write_report(
      tmp_path, report_runs.load_summaries(tmp_path), rate_window=(10, 1000)
  )
  with (tmp_path / 'rates.csv').open() as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 12
  for row in rows:
    params = 1000 if row['num_neurons'] == '[10, 5]' else 5000
    expected = true_rates[params, row['optimizer']][int(row['seed'])]
    assert float(row['rate']) == pytest.approx(expected)
    assert int(row['points']) == 5 and int(row['first_step']) == 10
  with (tmp_path / 'sam_gain.csv').open() as f:
    gains = {r['num_neurons']: float(r['gain_mean']) for r in csv.DictReader(f)}
  assert gains['(10,5)'] == pytest.approx(0.002)
  assert gains['(40,20)'] == pytest.approx(0.006)
  assert tmp_path / 'train_loss_vs_steps.png' in written
  assert (tmp_path / 'train_loss_vs_steps.png').read_bytes()[:8] == PNG_MAGIC
  assert (tmp_path / 'results.csv').read_text().startswith('num_neurons')
  assert tmp_path / 'linear_rate_vs_params.png' in written
  assert 'SAM - SGD, linear_rate' in capsys.readouterr().out


def test_runs_without_evaluated_steps_are_refused(tmp_path):
  write(tmp_path / 'a' / 'summary.json', make_summary(0, 'sgd', 0.9))
  with pytest.raises(ValueError, match='log_spaced_evals'):
    report.write_report(
        tmp_path, report_runs.load_summaries(tmp_path), rate_window=(1, 100)
    )
  write(tmp_path / 'a' / 'summary.json', converging_summary(0, 'sgd', 0.01, 10))
  with pytest.raises(ValueError, match='holds 2 evaluated steps'):
    report.write_report(
        tmp_path, report_runs.load_summaries(tmp_path), rate_window=(0, 1)
    )


def test_the_floor_leaves_out_the_flattened_steps():
  summary = converging_summary(0, 'sgd', 0.01, 10)
  # The curve flattens at the float32 floor after step 100.
  for record in summary['step_evals']:
    record['train_loss'] = max(record['train_loss'], math.exp(-1.5))
  with_flat = rates.run_rate(summary, 10, 1000)
  assert with_flat.rate < 0.005
  fit = rates.run_rate(summary, 10, 1000, floor=math.exp(-1.5))
  assert fit.rate == pytest.approx(0.01)
  assert (fit.points, fit.last_step) == (3, 100)
