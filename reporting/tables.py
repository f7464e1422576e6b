"""The report's tables (results.csv, sam_gain.csv, trend.csv and
trend.json) and the lines it prints."""

from collections.abc import Mapping, Sequence
import csv
import json
import math
import pathlib
from typing import Any

from reporting import metrics
from reporting.metrics import MetricInfo
from reporting.stats import canonical
from reporting.stats import CurveTrend
from reporting.stats import Estimate
from reporting.stats import Gain
from reporting.stats import OLS_PAIRED
from reporting.stats import Setting
from reporting.stats import Trend

# The Hessian of a run's final weights as analyze.py measured it (its
# analysis/analysis.json beside the run's summary.json, at the run's last
# step): summary fields reported where every run has them.
HESSIAN_METRICS = {
    'hessian_top_eigenvalue': 'top Hessian eigenvalue',
    'hessian_trace': 'Hessian trace',
    # E[lambda^2] / E[lambda]^2 over the spectrum: 1 when every eigenvalue
    # is equal, larger as the spectrum spreads (scale-free).
    'hessian_spread': 'E[λ²] / E[λ]²',
    # The EPFL report's flatness: lambda_max / |lambda_min| (the most
    # negative eigenvalue; analysis.most_negative_eigenvalue).
    'hessian_eigenvalue_ratio': 'λ_max / |λ_min|',
}


def format_value(value: Any) -> str:
  """A config value as in a command line: [300, 100] -> '(300,100)'."""
  if isinstance(value, list):
    return '(' + ','.join(format_value(v) for v in value) + ')'
  return '' if value is None else str(value)


def label(config: dict[str, Any], keys: Sequence[str]) -> str:
  """'k=v, ...' of the `keys` in `config` (a run's setting omits those it
  does not read)."""
  return ', '.join(
      f'{k}={format_value(config[k])}' for k in keys if k in config
  )


def _order(value: Any) -> tuple[Any, ...]:
  """Sorts numbers numerically and widths by their layers' sizes."""
  if isinstance(value, (int, float)):
    return (0, float(value))
  if isinstance(value, list):
    return (1, tuple(value))
  return (2, format_value(value))


def sort_settings(
    settings: Sequence[Setting], keys: Sequence[str]
) -> list[Setting]:
  return sorted(settings, key=lambda s: [_order(s.config.get(k)) for k in keys])


def count_range(counts: Sequence[int]) -> str:
  """'3', or '2-3' when the counts differ."""
  low, high = min(counts), max(counts)
  return f'{low}' if low == high else f'{low}-{high}'


def _number(value: float, info: MetricInfo, sign: str = '') -> str:
  """`value` as shown: in percent to 2 decimals, otherwise 4 digits."""
  spec = f'{sign}.2f' if info.percent else f'{sign}.4g'
  return f'{info.scale * value:{spec}}'


def interval_text(
    estimate: Estimate | Trend, missing: str, info: MetricInfo, sign: str = ''
) -> str:
  """' [low, high]' as `info` shows values, or ' [no CI: `missing`]' where
  it is nan."""
  if math.isnan(estimate.low):
    return f' [no CI: {missing}]'
  return (
      f' [{_number(estimate.low, info, sign)}, '
      f'{_number(estimate.high, info, sign)}]'
  )


def trend_text(fit: CurveTrend, info: MetricInfo) -> str:
  """'OLS slope +0.42 pp per decade [+0.10, +0.74], p=0.012, n=3 paired
  seeds x 5 widths', saying which points were regressed when seeds do not
  pair."""
  trend, settings, points = fit.trend, len(fit.gains), fit.axis.points
  # linregress's stderr is nan when every gain is equal (0 / 0).
  missing = '2 points' if trend.n_points < 3 else 'all gains equal'
  unit = ' '.join(filter(None, [info.gain_unit, 'per', fit.axis.per]))
  text = (
      f'OLS slope {_number(trend.slope, info, "+")} {unit}'
      f'{interval_text(trend, missing, info, "+")}, p={trend.p_value:.2g}, '
  )
  if fit.method == OLS_PAIRED:
    pairs = count_range([len(g.differences) for g in fit.gains])
    return text + f'n={pairs} paired seeds x {settings} {points}'
  sam, sgd = (
      count_range([len(s.runs) for s in group])
      for group in ([g.sam for g in fit.gains], [g.sgd for g in fit.gains])
  )
  return text + (
      f'n={sam} SAM, {sgd} SGD seeds (unpaired) x {settings} '
      f'{points}, OLS on the {settings} mean gains'
  )


def write_csv(path: pathlib.Path, rows: Sequence[dict[str, Any]]) -> None:
  with path.open('w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


def available(metrics: Sequence[str], settings: Sequence[Setting]) -> list[str]:
  """The `metrics` that every run of `settings` has."""
  return [
      metric
      for metric in metrics
      if all(
          run.get(metric) is not None
          for setting in settings
          for run in setting.runs
      )
  ]


# The linear stability of the final weights (analyze.py's part
# 'stability': exact per-example Hessians of small models).
STABILITY_METRICS = {
    'stability_sharpness_a': 'sharpness a = λ_max(H)',
    'stability_non_uniformity_s': 'non-uniformity s',
}


def measured_settings(
    settings: Sequence[Setting], measures: Sequence[str]
) -> list[Setting]:
  """The settings whose every run has all of `measures`."""
  return [s for s in settings if len(available(measures, [s])) == len(measures)]


def hessian_settings(settings: Sequence[Setting]) -> list[Setting]:
  """The settings whose every run has a measured Hessian (its top eigenvalue
  and trace; the spread needs SLQ's moments, which analysis.slq_probes=0
  skips)."""
  return measured_settings(settings, list(HESSIAN_METRICS)[:2])


def hessian_metrics(settings: Sequence[Setting]) -> list[str]:
  """The HESSIAN_METRICS and STABILITY_METRICS that some run of `settings`
  has."""
  return [
      m
      for m in (*HESSIAN_METRICS, *STABILITY_METRICS)
      if any(available([m], [s]) for s in settings)
  ]


def results_rows(
    settings: Sequence[Setting],
    keys: Sequence[str],
    n_excluded: Mapping[str, int],
) -> list[dict[str, Any]]:
  """results.csv: the varying keys, seeds, size, the excluded runs (counted
  by canonical setting config), then each metric's mean, std and interval."""
  rows = []
  for setting in settings:
    row = {key: format_value(setting.config.get(key)) for key in keys}
    row.update(
        n_seeds=len(setting.runs),
        seeds=' '.join(map(str, setting.seeds)),
        num_params=setting.num_params,
        achieved_sparsity=setting.achieved_sparsity,
        n_excluded=n_excluded.get(canonical(setting.config), 0),
    )
    if hessian_metrics(settings):
      # Which analysis settings measured this setting's Hessians.
      row['hessian_settings'] = ' | '.join(
          sorted(
              {
                  run['hessian_settings']
                  for run in setting.runs
                  if 'hessian_settings' in run
              }
          )
      )
    for metric in (
        *metrics.summary_entries([run for s in settings for run in s.runs]),
        *hessian_metrics(settings),
    ):
      if not available([metric], [setting]):
        # The Hessian of this setting's runs was not measured.
        row.update(
            dict.fromkeys(
                (f'{metric}_{s}' for s in ('mean', 'std', 'ci_low', 'ci_high')),
                '',
            )
        )
        continue
      estimate = setting.estimate(metric)
      row[f'{metric}_mean'], row[f'{metric}_std'] = setting.stats(metric)
      row[f'{metric}_ci_low'] = estimate.low
      row[f'{metric}_ci_high'] = estimate.high
    rows.append(row)
  return rows


def gain_rows(
    gains: Sequence[Gain], keys: Sequence[str]
) -> list[dict[str, Any]]:
  """sam_gain.csv: the setting, then SGD, SAM and their difference."""
  rows = []
  for gain in gains:
    row = {key: format_value(gain.sam.config.get(key)) for key in keys}
    sgd_mean, sgd_std = gain.sgd.stats(gain.metric)
    sam_mean, sam_std = gain.sam.stats(gain.metric)
    estimate = gain.estimate
    row.update(
        num_params=gain.sam.num_params,
        achieved_sparsity=gain.sam.achieved_sparsity,
        metric=gain.metric,
        n_seeds_sgd=len(gain.sgd.runs),
        n_seeds_sam=len(gain.sam.runs),
        sgd_mean=sgd_mean,
        sgd_std=sgd_std,
        sam_mean=sam_mean,
        sam_std=sam_std,
        n_pairs=len(gain.differences),
        gain_mean=estimate.mean,
        gain_ci_low=estimate.low,
        gain_ci_high=estimate.high,
        gain_ci_method=estimate.method,
        gain_p_value=estimate.p_value,
    )
    rows.append(row)
  return rows


def trend_record(fit: CurveTrend, metric: str) -> dict[str, Any]:
  """One curve's line of trend.json."""
  trend = fit.trend
  return {
      'x': fit.axis.regressor,
      'curve': fit.curve,
      'metric': metric,
      'method': fit.method,
      'n_points': trend.n_points,
      'n_settings': len(fit.gains),
      'slope': trend.slope,
      'slope_ci_low': trend.low,
      'slope_ci_high': trend.high,
      'intercept': trend.intercept,
      'p_value': trend.p_value,
  }


def write_trends(
    root: pathlib.Path,
    fits: Sequence[CurveTrend],
    keys: Sequence[str],
    metric: str,
) -> list[pathlib.Path]:
  """trend.csv (the curve as a column per varying key, empty for the keys
  that vary along it) and trend.json (nan written as null)."""
  records = [trend_record(fit, metric) for fit in fits]
  write_csv(
      root / 'trend.csv',
      [
          {
              'x': r['x'],
              **{k: format_value(r['curve'].get(k)) for k in keys},
              **{k: v for k, v in r.items() if k not in ('x', 'curve')},
          }
          for r in records
      ],
  )
  # JSON has no nan.
  records = [
      {
          k: None if isinstance(v, float) and math.isnan(v) else v
          for k, v in r.items()
      }
      for r in records
  ]
  (root / 'trend.json').write_text(json.dumps(records, indent=2) + '\n')
  return [root / 'trend.csv', root / 'trend.json']


def format_gains(
    gains: Sequence[Gain], keys: Sequence[str], info: MetricInfo
) -> str:
  """One line per setting: SGD, SAM and the gain (in percent for a metric
  in percent)."""
  unit = '%, ' if info.percent else ''
  lines = [f'SAM - SGD, {info.entry} ({unit}mean [95% CI] over seeds):']
  for gain in gains:
    sgd, sam, estimate = (
        gain.sgd.estimate(gain.metric),
        gain.sam.estimate(gain.metric),
        gain.estimate,
    )
    setting = label(gain.sam.config, keys)
    seeds = (
        f'{len(gain.differences)} pairs'
        if gain.differences
        else f'{len(gain.sam.runs)} SAM, {len(gain.sgd.runs)} SGD seeds'
    )
    lines.append(
        f'  {setting}: SGD {_number(sgd.mean, info)}'
        f'{interval_text(sgd, "n=1", info)}'
        f'  SAM {_number(sam.mean, info)}{interval_text(sam, "n=1", info)}'
        f'  gain {_number(estimate.mean, info, "+")}'
        f'{interval_text(estimate, "n=1", info, "+")}'
        f' {estimate.method}, {seeds}'
    )
  return '\n'.join(lines)


def format_trends(fits: Sequence[CurveTrend], info: MetricInfo) -> str:
  """One line per curve: the slope, its interval, p-value and n."""
  unit = 'pp, ' if info.percent else ''
  lines = [f'Trend of SAM - SGD, {info.entry} ({unit}OLS slope [95% CI]):']
  for fit in fits:
    curve = ''.join(f', {k}={format_value(v)}' for k, v in fit.curve.items())
    lines.append(
        f'  against {fit.axis.regressor}{curve}: {trend_text(fit, info)}'
    )
  return '\n'.join(lines)
