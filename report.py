r"""Aggregates a sweep into tables and figures: python report.py DIR.

Reads every summary.json under DIR, at any depth (sweep.py's run
directories, or the per-replica directories of a run), and groups the runs
into settings: runs whose configs differ only in the seed (and in keys that do
not change what is trained, report_stats.RUN_ONLY_KEYS) are seeds of one
setting. A run that repeats another (the same setting and seed: an SGD run
that differs only in rho, a replica and its separate run, a copy) counts
once. Every run that cannot be used is listed with the reason and left out
of every statistic, and the figures' captions say how many: runs that did
not finish (a summary "status" other than "finished"; summaries without one
are older finished runs) and run directories without a summary (running,
stopped with a checkpoint, failed with its error line, not trained).
--require_complete makes any of these an error. Writes into DIR, after
removing the files of these names an earlier report wrote:

* results.csv: one row per setting, mean, std and 95% t-interval over seeds;
* sam_gain.csv: SAM minus SGD for each pair of settings that differ only in
  the optimizer: the mean per-seed difference with its paired 95% t-interval
  (Welch's interval where no seed pairs);
* trend.csv and trend.json: the OLS slope of the gain along each curve of
  the gain figures, with its 95% interval and p-value;
* accuracy_vs_params.png and sam_gain_vs_params.png (log-x) when the width
  varies, and the same against the measured sparsity and against label_noise
  when those vary; error bars are 95% intervals;
* hessian_vs_params.png (and against the other axes): the top eigenvalue,
  trace and spread E[λ²]/E[λ]² of the final weights' Hessian, where
  `analyze.py --workdir=DIR` has measured every run of a setting (the
  settings measured; also in results.csv).

A figure that cannot be drawn is skipped with a line that says why; the
tables and other figures are still written.

The statistics are in report_stats.py.
"""

import collections
from collections.abc import Callable, Mapping, Sequence
import csv
import functools
import json
import math
import pathlib
import re
import sys
import textwrap
from typing import Any

from absl import app
from absl import flags

# Figure objects, not pyplot: no display or global plotting state involved.
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.layout_engine import TightLayoutEngine
import numpy as np

import cli
from configs import default
import outcomes
from report_stats import canonical
from report_stats import CurveTrend
from report_stats import duplicates
from report_stats import Estimate
from report_stats import finished
from report_stats import fit_trend
from report_stats import Gain
from report_stats import group_settings
from report_stats import OLS_PAIRED
from report_stats import pair_gains
from report_stats import Setting
from report_stats import setting_config
from report_stats import Trend
from report_stats import varying_keys
from report_stats import X_AXES
from report_stats import XAxis

# Accuracies on the held-out validation examples (validation_fraction).
VALIDATION_METRICS = ('final_validation_accuracy', 'best_validation_accuracy')
# Mean average precision of a multi-label set (ogbg-molpcba, see tasks.py).
PRECISION_METRICS = tuple(
    f'{when}_{split}_average_precision'
    for split in ('test', 'validation')
    for when in ('final', 'best')
)

flags.DEFINE_enum(
    'metric',
    'final_test_accuracy',
    [
        'final_test_accuracy',
        'best_test_accuracy',
        *VALIDATION_METRICS,
        *PRECISION_METRICS,
    ],
    'Metric plotted and used for the SAM - SGD gain (a '
    'multi-label set is ranked by average precision).',
)
flags.DEFINE_bool(
    'require_complete',
    False,
    'Fail, writing nothing, if a '
    'run under DIR cannot be used (not finished, diverged, '
    'running, failed): for a report that must cover the whole '
    'grid.',
)
FLAGS = flags.FLAGS

# What report.py writes into a sweep's directory; an earlier report's files
# of these names are removed first, so that none outlives the data it drew.
OUTPUT_PATTERNS = (
    'results.csv',
    'sam_gain.csv',
    'trend.csv',
    'trend.json',
    'accuracy_vs_*.png',
    'hessian_vs_*.png',
    'sam_gain_vs_*.png',
)

# The Hessian of a run's final weights as analyze.py measured it (its
# analysis/analysis.json beside the run's summary.json, at the run's last
# step): summary fields reported where every run has them.
HESSIAN_METRICS = {
    'hessian_top_eigenvalue': 'top Hessian eigenvalue',
    'hessian_trace': 'Hessian trace',
    # E[lambda^2] / E[lambda]^2 over the spectrum: 1 when every eigenvalue
    # is equal, larger as the spectrum spreads (scale-free).
    'hessian_spread': 'E[λ²] / E[λ]²',
}
# The analysis settings that decide the Hessian's measurements, written
# beside them in results.csv.
HESSIAN_SETTINGS = (
    'num_examples',
    'seed',
    'lanczos_iterations',
    'lanczos_tolerance',
    'hutchinson_probes',
    'trace_tolerance',
    'slq_probes',
    'slq_iterations',
)
# Summary fields averaged over seeds in results.csv (and VALIDATION_METRICS
# and HESSIAN_METRICS where every run has them).
METRICS = (
    'final_test_accuracy',
    'best_test_accuracy',
    'final_test_loss',
    'final_train_loss',
    'final_train_accuracy',
)
# Caption line height, in inches.
_LINE = 0.17


def load_summaries(root: pathlib.Path) -> dict[pathlib.Path, dict[str, Any]]:
  """Every run summary in the summary.json files under `root`, by path.

  A run of several replicas (config.num_replicas) writes one summary per
  replica in its replica_<r>/ directories, found here like any other, and an
  index summary.json (with 'replica_summaries') that is skipped.
  """
  summaries = {}
  for path in sorted(root.rglob('summary.json')):
    content = json.loads(path.read_text())
    if 'replica_summaries' not in content:
      summaries[path] = {
          **content,
          **hessian_fields(path.parent, content),
          'config': default.completed(content['config']),
      }
      pool_fine_tune(summaries[path]['config'])
  return summaries


def pool_fine_tune(config: dict[str, Any]) -> None:
  """Makes fine-tunes (config.init_from) from pretrained runs of one
  setting seeds of one setting: init_from becomes the pretrained runs'
  setting (its keys that differ from configs/default.py) and the seed
  (pretraining seed, seed), which pairs SAM and SGD fine-tunes of the same
  pretrained run. A pretrained run that cannot be read stays a path."""
  if not config.get('init_from'):
    return
  path = pathlib.Path(config['init_from'])
  replica = re.fullmatch(r'replica_(\d+)', path.name)
  if replica and not (path / 'config.json').exists():
    path = path.parent
  try:
    source = json.loads((path / 'config.json').read_text())
  except (OSError, ValueError):
    return
  seed = source.get('seed', 0) + (int(replica.group(1)) if replica else 0)
  defaults = default.get_config().to_dict()
  config['init_from'] = 'pretrained: ' + ', '.join(
      f'{key}={format_value(value)}'
      for key, value in sorted(setting_config(source).items())
      if json.dumps(value) != json.dumps(defaults.get(key))
  )
  config['seed'] = (seed, config.get('seed'))


def hessian_fields(
    run_dir: pathlib.Path, summary: Mapping[str, Any]
) -> dict[str, float]:
  """HESSIAN_METRICS of the run's final weights, if analyze.py measured
  them (at the run's last step)."""
  path = run_dir / 'analysis' / 'analysis.json'
  if not path.exists():
    return {}
  analysis = json.loads(path.read_text())
  # Each part's step and settings (analyses before per-part records: the
  # analysis's own).
  record = analysis.get('parts', {}).get('hessian', analysis)
  if 'hessian' not in analysis or record['step'] != summary.get('steps'):
    return {}
  measured = analysis['hessian']
  fields = {
      'hessian_top_eigenvalue': measured['top_eigenvalues'][0],
      'hessian_trace': measured['trace'],
  }
  if record.get('settings'):
    fields['hessian_settings'] = ', '.join(
        f'{key}={record["settings"].get(key)}' for key in HESSIAN_SETTINGS
    )
  moments = measured.get('moments', ())  # Absent if slq_probes=0.
  if len(moments) >= 2:
    fields['hessian_spread'] = moments[1] / moments[0] ** 2
  return fields


def format_value(value: Any) -> str:
  """A config value as in a command line: [300, 100] -> '(300,100)'."""
  if isinstance(value, list):
    return '(' + ','.join(format_value(v) for v in value) + ')'
  return '' if value is None else str(value)


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


def _curves(
    items: Sequence[Any],
    setting: Callable[[Any], Setting],
    axis: XAxis,
    keys: Sequence[str],
) -> dict[str, list[Any]]:
  """Items grouped by their setting's values of `keys` ('k=v, ...'), each
  group sorted along `axis`."""
  curves = collections.defaultdict(list)
  for item in items:
    label = ', '.join(
        f'{k}={format_value(setting(item).config.get(k))}' for k in keys
    )
    curves[label].append(item)
  return {
      label: sorted(members, key=lambda i: axis.value(setting(i)))
      for label, members in curves.items()
  }


def _count(counts: Sequence[int]) -> str:
  """'3', or '2-3' when the counts differ."""
  low, high = min(counts), max(counts)
  return f'{low}' if low == high else f'{low}-{high}'


def _interval(
    estimate: Estimate | Trend, missing: str, spec: str = '.2f'
) -> str:
  """' [low, high]' in percent, or ' [no CI: `missing`]' where it is nan."""
  if math.isnan(estimate.low):
    return f' [no CI: {missing}]'
  return f' [{100 * estimate.low:{spec}}, {100 * estimate.high:{spec}}]'


def trend_text(fit: CurveTrend) -> str:
  """'OLS slope +0.42 pp/decade [+0.10, +0.74], p=0.012, n=3 paired seeds x
  5 widths', saying which points were regressed when seeds do not pair."""
  trend, settings, points = fit.trend, len(fit.gains), fit.axis.points
  # linregress's stderr is nan when every gain is equal (0 / 0).
  missing = '2 points' if trend.n_points < 3 else 'all gains equal'
  text = (
      f'OLS slope {100 * trend.slope:+.2f} {fit.axis.slope_unit}'
      f'{_interval(trend, missing, "+.2f")}, p={trend.p_value:.2g}, '
  )
  if fit.method == OLS_PAIRED:
    pairs = _count([len(g.differences) for g in fit.gains])
    return text + f'n={pairs} paired seeds x {settings} {points}'
  sam, sgd = (
      _count([len(s.runs) for s in group])
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


def hessian_settings(settings: Sequence[Setting]) -> list[Setting]:
  """The settings whose every run has a measured Hessian (its top eigenvalue
  and trace; the spread needs SLQ's moments, which analysis.slq_probes=0
  skips)."""
  return [
      s for s in settings if len(available(list(HESSIAN_METRICS)[:2], [s])) == 2
  ]


def hessian_metrics(settings: Sequence[Setting]) -> list[str]:
  """The HESSIAN_METRICS that some run of `settings` has."""
  return [
      m for m in HESSIAN_METRICS if any(available([m], [s]) for s in settings)
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
        *METRICS,
        *available(VALIDATION_METRICS, settings),
        *available(PRECISION_METRICS, settings),
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


def _title(settings: Sequence[Setting]) -> str:
  return ', '.join(
      sorted(
          {
              f'{s.config.get("dataset")} ' f'{s.config.get("model")}'
              for s in settings
          }
      )
  )


def _yerr(estimates: Sequence[Estimate]) -> np.ndarray:
  """Error bars from the intervals, in percent (nan: none drawn)."""
  return 100 * np.array(
      [
          [e.mean - e.low for e in estimates],
          [e.high - e.mean for e in estimates],
      ]
  )


def _figure(caption: Sequence[str], panels: int = 1) -> tuple[Figure, Any]:
  """A figure with the caption's lines (wrapped) under the axes: one axes,
  or a row of `panels`."""
  lines = [
      wrapped
      for line in caption
      for wrapped in textwrap.wrap(line, 95 * panels, subsequent_indent='    ')
  ]
  height = 4.4 + _LINE * len(lines)
  # The tight layout keeps the axes above the caption.
  fig = Figure(
      figsize=(6.4 * panels, height),
      layout=TightLayoutEngine(
          rect=(0, (0.1 + _LINE * len(lines)) / height, 1, 1)
      ),
  )
  fig.text(0.02, 0.02, '\n'.join(lines), fontsize='small', va='bottom')
  return fig, fig.subplots(1, panels) if panels > 1 else fig.add_subplot()


def _label(ax, axis: XAxis, ylabel: str, title: str) -> None:
  if axis.log:
    ax.set_xscale('log')
    # Label the decades only: over less than two decades matplotlib labels
    # every minor tick too, and the labels run into each other.
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
  ax.set_xlabel(axis.label)
  ax.set_ylabel(ylabel)
  ax.set_title(textwrap.fill(title, 70))
  ax.grid(True, which='both', alpha=0.3)
  ax.legend(fontsize='small')


def _finish(
    fig: Figure, ax, axis: XAxis, ylabel: str, title: str, path: pathlib.Path
) -> None:
  _label(ax, axis, ylabel, title)
  fig.savefig(path, dpi=150)


def _draw_by_optimizer(
    ax,
    settings: Sequence[Setting],
    axis: XAxis,
    curve_keys: Sequence[str],
    metric: str,
    scale: float,
) -> None:
  """`metric` times `scale` (mean and 95% t-interval over seeds) against
  `axis`: a line per optimizer and curve, dashed for SGD; one colour per
  curve, or per optimizer when there is one curve."""
  curves = _curves(settings, lambda s: s, axis, curve_keys)
  optimizers = sorted({s.optimizer for s in settings}, reverse=True)
  for index, (label, members) in enumerate(curves.items()):
    for optimizer in optimizers:
      points = [s for s in members if s.optimizer == optimizer]
      if not points:
        continue
      estimates = [s.estimate(metric) for s in points]
      color = index if len(curves) > 1 else optimizers.index(optimizer)
      ax.errorbar(
          [axis.value(s) for s in points],
          [scale * e.mean for e in estimates],
          yerr=_yerr(estimates) * scale / 100,
          color=f'C{color}',
          linestyle='--' if optimizer == 'sgd' else '-',
          marker='o' if optimizer == 'sgd' else 's',
          capsize=3,
          label=', '.join(filter(None, [optimizer.upper(), label])),
      )


def plot_accuracy(
    settings: Sequence[Setting],
    axis: XAxis,
    curve_keys: Sequence[str],
    metric: str,
    notes: Sequence[str],
    path: pathlib.Path,
) -> None:
  """Accuracy in percent against `axis`, by optimizer and curve; `notes`
  end the caption."""
  seeds = _count([len(s.runs) for s in settings])
  fig, ax = _figure(
      [
          f'Error bars: 95% t-intervals over n={seeds} seeds '
          '(none for a single seed).',
          *notes,
      ]
  )
  _draw_by_optimizer(ax, settings, axis, curve_keys, metric, 100)
  _finish(
      fig,
      ax,
      axis,
      f'{metric.replace("_", " ")} (%)',
      f'{_title(settings)}: mean ± 95% CI over seeds',
      path,
  )


def plot_hessian(
    settings: Sequence[Setting],
    axis: XAxis,
    curve_keys: Sequence[str],
    notes: Sequence[str],
    path: pathlib.Path,
) -> None:
  """The HESSIAN_METRICS every run of `settings` has against `axis`, a panel
  each, by optimizer and curve (log-y where every value is positive)."""
  seeds = _count([len(s.runs) for s in settings])
  metrics = available(list(HESSIAN_METRICS), settings)
  fig, axes = _figure(
      [
          f'Error bars: 95% t-intervals over n={seeds} seeds. '
          "Hessian of the final weights' training loss "
          '(analyze.py; Lanczos, Hutchinson, SLQ moments).',
          *notes,
      ],
      panels=len(metrics),
  )
  for ax, metric in zip(np.atleast_1d(axes), metrics):
    label = HESSIAN_METRICS[metric]
    _draw_by_optimizer(ax, settings, axis, curve_keys, metric, 1)
    if all(run[metric] > 0 for s in settings for run in s.runs):
      ax.set_yscale('log')
    _label(ax, axis, label, f'{_title(settings)}: {label}')
  fig.savefig(path, dpi=150)


def plot_gain(
    gains: Sequence[Gain],
    fits: Mapping[str, CurveTrend],
    axis: XAxis,
    curve_keys: Sequence[str],
    notes: Sequence[str],
    path: pathlib.Path,
) -> None:
  """SAM - SGD (mean and 95% interval) against `axis`, a line per curve,
  with its OLS fit (`fits`, by curve label) dotted and stated in the
  caption."""
  methods = ' / '.join(sorted({g.estimate.method for g in gains}))
  caption = [
      f'Error bars: 95% {methods} intervals over seeds (none for a '
      'single seed).'
  ]
  caption += [
      f'{label}: ' * bool(label) + trend_text(fit)
      for label, fit in fits.items()
  ]
  caption += notes
  fig, ax = _figure(caption)
  ax.axhline(0, color='gray', linewidth=0.8)
  curves = _curves(gains, lambda g: g.sam, axis, curve_keys)
  for index, (label, members) in enumerate(curves.items()):
    estimates = [g.estimate for g in members]
    xs = [axis.value(g.sam) for g in members]
    ax.errorbar(
        xs,
        [100 * e.mean for e in estimates],
        yerr=_yerr(estimates),
        color=f'C{index}',
        marker='s',
        capsize=3,
        label=label or 'SAM − SGD',
    )
    if label in fits:
      # A straight segment on the figure's axes, log-x included.
      trend, ends = fits[label].trend, [min(xs), max(xs)]
      ax.plot(
          ends,
          [100 * (trend.intercept + trend.slope * axis.x(x)) for x in ends],
          color=f'C{index}',
          linestyle=':',
          linewidth=1.2,
      )
  metric = gains[0].metric.replace('_', ' ')
  _finish(
      fig,
      ax,
      axis,
      f'SAM − SGD, {metric} (percentage points)',
      f'{_title([g.sam for g in gains])}: SAM − SGD, mean ± 95% CI; '
      'dotted: OLS fit',
      path,
  )


def format_gains(gains: Sequence[Gain], keys: Sequence[str]) -> str:
  """One line per setting: SGD, SAM and the gain, in percent."""
  lines = [f'SAM - SGD, {gains[0].metric} (%, mean [95% CI] over seeds):']
  for gain in gains:
    sgd, sam, estimate = (
        gain.sgd.estimate(gain.metric),
        gain.sam.estimate(gain.metric),
        gain.estimate,
    )
    setting = ', '.join(
        f'{k}={format_value(gain.sam.config.get(k))}' for k in keys
    )
    seeds = (
        f'{len(gain.differences)} pairs'
        if gain.differences
        else f'{len(gain.sam.runs)} SAM, {len(gain.sgd.runs)} SGD seeds'
    )
    lines.append(
        f'  {setting}: SGD {100 * sgd.mean:.2f}{_interval(sgd, "n=1")}'
        f'  SAM {100 * sam.mean:.2f}{_interval(sam, "n=1")}'
        f'  gain {100 * estimate.mean:+.2f}'
        f'{_interval(estimate, "n=1", "+.2f")}'
        f' {estimate.method}, {seeds}'
    )
  return '\n'.join(lines)


def format_trends(fits: Sequence[CurveTrend], metric: str) -> str:
  """One line per curve: the slope, its interval, p-value and n."""
  lines = [f'Trend of SAM - SGD, {metric} (pp, OLS slope [95% CI]):']
  for fit in fits:
    curve = ''.join(f', {k}={format_value(v)}' for k, v in fit.curve.items())
    lines.append(f'  against {fit.axis.regressor}{curve}: {trend_text(fit)}')
  return '\n'.join(lines)


def unused_runs(
    root: pathlib.Path, summaries: Mapping[pathlib.Path, dict[str, Any]]
) -> dict[pathlib.Path, tuple[str, dict[str, Any] | None]]:
  """Every run under `root` that the report cannot use, by its directory:
  (why, its config, None if it has none). Runs whose summary says they did
  not finish, and run directories without a summary.json: those with a
  config.json, and those where sweep.py ran main.py (its train.log), which
  may have failed before writing its config."""
  unused = {
      path.parent: (summary['status'], summary['config'])
      for path, summary in summaries.items()
      if not finished(summary)
  }
  runs = {
      path.parent
      for name in ('config.json', outcomes.LOG_NAME)
      for path in root.rglob(name)
  }
  for run in sorted(runs):
    if (run / 'summary.json').exists():
      continue
    try:
      config = json.loads((run / 'config.json').read_text())
    except (OSError, ValueError):
      config = None  # Refused before training started.
    if config is None or (isinstance(config, dict) and 'optimizer' in config):
      if config is not None:
        config = default.completed(config)
        pool_fine_tune(config)
      unused[run] = (outcomes.unfinished_reason(run), config)
  return unused


def _unused_note(unused: Mapping[pathlib.Path, tuple[str, Any]]) -> list[str]:
  """The captions' line on the runs left out, [] when none is."""
  if not unused:
    return []
  # 'running (process 12)', 'failed: error: ...', 'stopped at step 7 ...'.
  kinds = collections.Counter(
      re.split(r' \(|:| at ', why)[0] for why, _ in unused.values()
  )
  return [
      f'Not used: {len(unused)} runs ('
      + ', '.join(f'{n} {kind}' for kind, n in sorted(kinds.items()))
      + '), listed by report.py; the statistics are of the others.'
  ]


def _remove_earlier_outputs(root: pathlib.Path) -> None:
  """Removes the files an earlier report wrote (OUTPUT_PATTERNS)."""
  for pattern in OUTPUT_PATTERNS:
    for path in root.glob(pattern):
      if path.is_file():
        path.unlink()


def _draw(
    path: pathlib.Path,
    draw: Callable[[pathlib.Path], None],
    written: list[pathlib.Path],
) -> None:
  """Draws one figure into `path`, or says in one line why it cannot."""
  try:
    draw(path)
  except Exception as e:  # pylint: disable=broad-except
    # A figure is one view of the tables, which are written already.
    print(
        f'skipped {path.name}: {type(e).__name__}: '
        f'{str(e).strip().splitlines()[0] if str(e).strip() else ""}'
    )
    return
  written.append(path)


def write_report(
    root: pathlib.Path,
    summaries: Mapping[pathlib.Path, dict[str, Any]],
    metric: str,
    require_complete: bool = False,
) -> list[pathlib.Path]:
  """Writes the CSVs, trend files and figures into `root`; prints the runs
  not used and why, those counted once, the gains and the trends; returns
  the written paths.

  `summaries` (load_summaries's) must include a finished run.

  Raises:
    ValueError: `metric` is a validation accuracy or an average precision
      that some run lacks; or, with `require_complete`, a run is not used.
  """
  unused = unused_runs(root, summaries)
  for run, (why, _) in unused.items():
    print(f'not used ({why}): {run}')
  if unused:
    print(f'runs not used: {len(unused)}')
  if unused and require_complete:
    raise ValueError(
        f'{len(unused)} runs under {root} cannot be used (listed '
        'above) and --require_complete is set'
    )
  usable = {path: s for path, s in summaries.items() if finished(s)}
  for path, original in duplicates(usable).items():
    print(
        f'counted once: {path.parent} is the same run as '
        f'{original.parent} (same setting and seed)'
    )
    del usable[path]
  n_excluded = collections.Counter(
      canonical(setting_config(config))
      for _, config in unused.values()
      if config is not None
  )
  notes = _unused_note(unused)
  settings = group_settings(list(usable.values()))
  keys = [k for k in varying_keys(settings) if k != 'optimizer']
  settings = sort_settings(settings, [*keys, 'optimizer'])
  if metric in VALIDATION_METRICS and metric not in available(
      VALIDATION_METRICS, settings
  ):
    raise ValueError(
        f'--metric={metric} needs every run trained with '
        'validation_fraction > 0, and some runs have no '
        'validation split'
    )
  if metric in PRECISION_METRICS and metric not in available(
      PRECISION_METRICS, settings
  ):
    raise ValueError(
        f'--metric={metric} needs runs on a multi-label dataset '
        '(ogbg_molpcba) that measured it on every run'
    )
  _remove_earlier_outputs(root)
  written = [root / 'results.csv']
  write_csv(
      written[-1], results_rows(settings, [*keys, 'optimizer'], n_excluded)
  )
  gains = pair_gains(settings, metric)
  if gains:
    written.append(root / 'sam_gain.csv')
    write_csv(written[-1], gain_rows(gains, keys))
    print(format_gains(gains, keys))
  axes = [a for a in X_AXES if any(k in a.keys for k in keys)]
  # The keys that make the curves along each axis.
  curve_keys = {a.name: [k for k in keys if k not in a.keys] for a in axes}
  fits = {}  # By axis name, then by curve label.
  for axis in axes:
    curves = _curves(gains, lambda g: g.sam, axis, curve_keys[axis.name])
    fits[axis.name] = {
        label: fit
        for label, members in curves.items()
        if (fit := fit_trend(members, axis, curve_keys[axis.name]))
    }
  all_fits = [fit for by_curve in fits.values() for fit in by_curve.values()]
  if all_fits:
    written += write_trends(root, all_fits, keys, metric)
    print(format_trends(all_fits, metric))
  hessian = hessian_settings(settings)
  for axis in axes:
    curve = curve_keys[axis.name]
    _draw(
        root / f'accuracy_vs_{axis.name}.png',
        functools.partial(plot_accuracy, settings, axis, curve, metric, notes),
        written,
    )
    # Against an axis only where analyze.py measured two or more points
    # along it (a sweep may analyze only its label-noise-free runs).
    if len({axis.value(s) for s in hessian}) > 1:
      _draw(
          root / f'hessian_vs_{axis.name}.png',
          functools.partial(plot_hessian, hessian, axis, curve, notes),
          written,
      )
    if gains:
      _draw(
          root / f'sam_gain_vs_{axis.name}.png',
          functools.partial(
              plot_gain, gains, fits[axis.name], axis, curve, notes
          ),
          written,
      )
  return written


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    raise app.UsageError('Usage: python report.py DIR')
  cli.tolerate_closed_stdout()
  root = pathlib.Path(argv[1])
  summaries = load_summaries(root)
  if not summaries:
    sys.exit(f'error: no summary.json under {root}')
  if not any(map(finished, summaries.values())):
    statuses = collections.Counter(s['status'] for s in summaries.values())
    sys.exit(
        f'error: no finished run under {root} ('
        + ', '.join(f'{n} {status}' for status, n in sorted(statuses.items()))
        + ')'
    )
  try:
    written = write_report(
        root, summaries, FLAGS.metric, FLAGS.require_complete
    )
  except ValueError as e:
    sys.exit(f'error: {e}')
  for path in written:
    print(f'wrote {path}')


if __name__ == '__main__':
  app.run(main)
