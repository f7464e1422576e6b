"""report.py --tune against a brute-force choice on made-up summaries: the
best mean validation accuracy per width (ties to the smaller rho, a missing
run lowering n), the test gain at the chosen rho paired by seed, and
--tune_seeds choosing on some seeds and reporting on the others."""

import csv

import numpy as np
import pytest

import report
from reporting import runs as report_runs
from tests.test_report import make_summary
from tests.test_report import PNG_MAGIC
from tests.test_report import write

WIDTHS = {1000: [10, 5], 5000: [40, 20]}
RHOS = (0.01, 0.05, 0.2)
SEEDS = (0, 1, 2, 3)


def made_up_sweep(root):
  """(validation, test) accuracy by (params, optimizer, rho, seed), written
  as summaries under root. Width 1000 lacks (rho 0.05, seed 3); at width
  5000, rhos 0.05 and 0.2 tie on validation (0.05 must win)."""
  rng = np.random.default_rng(0)
  values = {}
  for params in WIDTHS:
    for seed in SEEDS:
      values[params, 'sgd', None, seed] = rng.uniform(0.7, 0.8, 2)
      for rho in RHOS:
        values[params, 'sam', rho, seed] = rng.uniform(0.7, 0.9, 2)
  del values[1000, 'sam', 0.05, 3]
  for seed in SEEDS:
    values[5000, 'sam', 0.2, seed] = values[5000, 'sam', 0.05, seed] * [1, 0.9]
    values[5000, 'sam', 0.05, seed][0] += 0.2  # The best on validation.
    values[5000, 'sam', 0.2, seed][0] = values[5000, 'sam', 0.05, seed][0]
  for (params, optimizer, rho, seed), (validation, test) in values.items():
    summary = make_summary(
        seed,
        optimizer,
        test,
        num_params=params,
        num_neurons=WIDTHS[params],
        rho=rho if rho is not None else 0.05,
    )
    summary['final_validation_accuracy'] = validation
    write(root / f'{optimizer}_{params}_{rho}_{seed}' / 'summary.json', summary)
  return values


def brute_force(values, params, seeds):
  """The rho with the best mean validation accuracy over `seeds` (ties to
  the smaller), its mean and n."""
  best = None
  for rho in RHOS:
    scores = [
        values[params, 'sam', rho, s][0]
        for s in seeds
        if (params, 'sam', rho, s) in values
    ]
    mean = np.mean(scores)
    if best is None or mean > best[1]:
      best = (rho, mean, len(scores))
  return best


def read_csv(path):
  with path.open() as f:
    return list(csv.DictReader(f))


@pytest.mark.parametrize('tune_seeds', [None, [0, 1]])
def test_tuned_rho_and_gain_match_a_brute_force_choice(tmp_path, tune_seeds):
  values = made_up_sweep(tmp_path)
  written = report.write_report(
      tmp_path,
      report_runs.load_summaries(tmp_path),
      tune=['rho'],
      tune_seeds=tune_seeds,
  )
  tuned = {
      (int(r['num_params']), r['optimizer']): r
      for r in read_csv(tmp_path / 'tuned.csv')
  }
  gains = {int(r['num_params']): r for r in read_csv(tmp_path / 'sam_gain.csv')}
  chosen_seeds = tune_seeds or SEEDS
  reported = [s for s in SEEDS if s not in (tune_seeds or ())]
  for params in WIDTHS:
    rho, mean, n = brute_force(values, params, chosen_seeds)
    row = tuned[params, 'sam']
    assert row['num_neurons'] == str(WIDTHS[params])
    assert tuned[params, 'sgd']['chosen_rho'] == ''  # SGD reads no rho.
    assert float(row['chosen_rho']) == rho
    assert float(row['tune_mean']) == pytest.approx(mean)
    assert int(row['tune_n']) == n and int(row['candidates']) == 3
    # The test gain at the chosen rho, paired by the reported seeds.
    differences = [
        values[params, 'sam', rho, s][1] - values[params, 'sgd', None, s][1]
        for s in reported
        if (params, 'sam', rho, s) in values
    ]
    assert float(gains[params]['gain_mean']) == pytest.approx(
        np.mean(differences)
    )
    assert int(gains[params]['n_pairs']) == len(differences)
  # Width 5000's tie went to the smaller rho.
  assert float(tuned[5000, 'sam']['chosen_rho']) == 0.05
  figure = tmp_path / 'tuned_rho_vs_params.png'
  assert figure in written and figure.read_bytes()[:8] == PNG_MAGIC


def test_a_missing_tuning_metric_is_one_line(tmp_path):
  write(tmp_path / 'a' / 'summary.json', make_summary(0, 'sam', 0.9))
  with pytest.raises(ValueError, match='final_validation_accuracy'):
    report.write_report(
        tmp_path, report_runs.load_summaries(tmp_path), tune=['rho']
    )


@pytest.mark.parametrize(
    'flags,message',
    [
        ({'tune': ['rhoo']}, 'no two runs differ only in rhoo'),
        ({'tune_seeds': [0]}, 'need --tune'),
        ({'rate_floor': 1e-8}, '--rate_floor needs --rate_window'),
    ],
)
def test_flags_that_would_do_nothing_are_refused(tmp_path, flags, message):
  made_up_sweep(tmp_path)
  with pytest.raises(ValueError, match=message):
    report.write_report(tmp_path, report_runs.load_summaries(tmp_path), **flags)


def test_the_chosen_rho_trend_and_its_bootstrap_interval(tmp_path):
  # Validation accuracy peaks at rho = 0.01 at 1,000 parameters and at 0.1
  # at 10,000, by far more than the seeds' spread: every resample chooses
  # the same, so the slope is exactly 1 decade per decade, interval [1, 1].
  # At 100,000 a near tie between 0.1 and 1 (one seed decides) widens it.
  widths = {1000: [10, 5], 10000: [40, 20], 100000: [400, 200]}
  rng = np.random.default_rng(1)
  for params, width in widths.items():
    for rho in (0.01, 0.1, 1.0):
      for seed in range(5):
        best = {1000: 0.01, 10000: 0.1, 100000: 0.1}[params]
        validation = 0.9 if rho == best else 0.5
        if params == 100000 and rho == 1.0:
          validation = 0.9 + (0.05 if seed == 0 else -0.02)
        summary = make_summary(
            seed, 'sam', 0.8, num_params=params, num_neurons=width, rho=rho
        )
        summary['final_validation_accuracy'] = validation + rng.uniform(0, 1e-3)
        write(tmp_path / f'{params}_{rho}_{seed}' / 'summary.json', summary)
  report.write_report(
      tmp_path, report_runs.load_summaries(tmp_path), tune=['rho']
  )
  [trend] = read_csv(tmp_path / 'tuned_trend.csv')
  # Chosen: 0.01, 0.1, 0.1 (the tie at 100,000 goes to 0.1 on the mean:
  # 0.9 against 0.9 + (0.05 - 4 x 0.02) / 5).
  x, y = np.log10([1000, 10000, 100000]), np.log10([0.01, 0.1, 0.1])
  assert float(trend['slope']) == pytest.approx(np.polyfit(x, y, 1)[0])
  # Resamples where seed 0 outweighs the others choose 1.0 at 100,000:
  # the interval reaches up to the slope through 0.01, 0.1, 1.
  assert float(trend['ci_high']) == pytest.approx(1.0)
  assert float(trend['ci_low']) == pytest.approx(float(trend['slope']))
  assert int(trend['sizes']) == 3
