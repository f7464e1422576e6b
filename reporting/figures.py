"""The report's figures: a metric or SAM's gain against width, sparsity or
label noise, a line per optimizer and curve, with 95% intervals and the
trend's fit; the Hessian's measurements beside them."""

import collections
from collections.abc import Callable, Mapping, Sequence
import pathlib
import textwrap
from typing import Any

# Figure objects, not pyplot: no display or global plotting state involved.
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.layout_engine import TightLayoutEngine
import numpy as np

from reporting import tables
from reporting.metrics import MetricInfo
from reporting.stats import CurveTrend
from reporting.stats import Estimate
from reporting.stats import Gain
from reporting.stats import Setting
from reporting.stats import XAxis

# Caption line height, in inches.
_LINE = 0.17


def group_curves(
    items: Sequence[Any],
    setting: Callable[[Any], Setting],
    axis: XAxis,
    keys: Sequence[str],
) -> dict[str, list[Any]]:
  """Items grouped by their setting's values of `keys` ('k=v, ...'), each
  group sorted along `axis`."""
  curves = collections.defaultdict(list)
  for item in items:
    curves[tables.label(setting(item).config, keys)].append(item)
  return {
      label: sorted(members, key=lambda i: axis.value(setting(i)))
      for label, members in curves.items()
  }


def _subject(config: dict[str, Any]) -> str:
  """What a setting trains: the dataset and model, or an agent's
  environment and network."""
  if config.get('environment'):
    return f'{config["environment"]} {config.get("rl_network")} agent'
  return f'{config.get("dataset")} {config.get("model")}'


def setting_title(settings: Sequence[Setting]) -> str:
  return ', '.join(sorted({_subject(s.config) for s in settings}))


def _yerr(estimates: Sequence[Estimate], scale: float) -> np.ndarray:
  """Error bars from the intervals, times `scale` (nan: none drawn)."""
  return scale * np.array(
      [
          [e.mean - e.low for e in estimates],
          [e.high - e.mean for e in estimates],
      ]
  )


def new_figure(caption: Sequence[str], panels: int = 1) -> tuple[Figure, Any]:
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
  curve, or per optimizer when there is one curve. Along an axis of SAM's
  (rho), which SGD does not read, SGD is a dashed level with its interval
  shaded."""
  levels = [s for s in settings if axis.sam_only and s.optimizer == 'sgd']
  settings = [s for s in settings if s not in levels]
  curves = group_curves(settings, lambda s: s, axis, curve_keys)
  optimizers = sorted({s.optimizer for s in settings}, reverse=True)
  for level in levels:
    # SGD's level serves every curve that shares its keys (it reads no
    # SAM key): the colour of its curve where there is one, else grey.
    label = tables.label(level.config, curve_keys)
    if len(curves) <= 1:
      color = 'C1'
    elif label in curves:
      color = f'C{list(curves).index(label)}'
    else:
      color = 'gray'
    estimate = level.estimate(metric)
    ax.axhline(
        scale * estimate.mean,
        color=color,
        linestyle='--',
        label=', '.join(filter(None, ['SGD', label])),
    )
    if not np.isnan(estimate.low):
      ax.axhspan(
          scale * estimate.low,
          scale * estimate.high,
          color=color,
          alpha=0.15,
      )
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
          yerr=_yerr(estimates, scale),
          color=f'C{color}',
          linestyle='--' if optimizer == 'sgd' else '-',
          marker='o' if optimizer == 'sgd' else 's',
          capsize=3,
          label=', '.join(filter(None, [optimizer.upper(), label])),
      )


def plot_metric(
    settings: Sequence[Setting],
    axis: XAxis,
    curve_keys: Sequence[str],
    info: MetricInfo,
    notes: Sequence[str],
    path: pathlib.Path,
) -> None:
  """The metric `info` (in percent if it reads so) against `axis`, by
  optimizer and curve; `notes` end the caption."""
  seeds = tables.count_range([len(s.runs) for s in settings])
  fig, ax = new_figure(
      [
          f'Error bars: 95% t-intervals over n={seeds} seeds '
          '(none for a single seed).',
          *notes,
      ]
  )
  _draw_by_optimizer(ax, settings, axis, curve_keys, info.entry, info.scale)
  _finish(
      fig,
      ax,
      axis,
      info.label,
      f'{setting_title(settings)}: mean ± 95% CI over seeds',
      path,
  )


def plot_hessian(
    settings: Sequence[Setting],
    axis: XAxis,
    curve_keys: Sequence[str],
    notes: Sequence[str],
    path: pathlib.Path,
    measures: Mapping[str, str] = tables.HESSIAN_METRICS,
    method: str = 'Lanczos, Hutchinson, SLQ moments',
) -> None:
  """The `measures` (entry -> label; tables.HESSIAN_METRICS or
  STABILITY_METRICS) every run of `settings` has against `axis`, a panel
  each, by optimizer and curve (log-y where every value is positive)."""
  seeds = tables.count_range([len(s.runs) for s in settings])
  metrics = tables.available(list(measures), settings)
  fig, axes = new_figure(
      [
          f'Error bars: 95% t-intervals over n={seeds} seeds. '
          "Hessian of the final weights' training loss "
          f'(analyze.py; {method}).',
          *notes,
      ],
      panels=len(metrics),
  )
  for ax, metric in zip(np.atleast_1d(axes), metrics):
    label = measures[metric]
    _draw_by_optimizer(ax, settings, axis, curve_keys, metric, 1)
    if all(run[metric] > 0 for s in settings for run in s.runs):
      ax.set_yscale('log')
    _label(ax, axis, label, f'{setting_title(settings)}: {label}')
  fig.savefig(path, dpi=150)


def plot_gain(
    gains: Sequence[Gain],
    fits: Mapping[str, CurveTrend],
    axis: XAxis,
    curve_keys: Sequence[str],
    info: MetricInfo,
    notes: Sequence[str],
    path: pathlib.Path,
) -> None:
  """SAM - SGD in the metric `info` (mean and 95% interval) against `axis`,
  a line per curve, with its OLS fit (`fits`, by curve label) dotted and
  stated in the caption."""
  methods = ' / '.join(sorted({g.estimate.method for g in gains}))
  caption = [
      f'Error bars: 95% {methods} intervals over seeds (none for a '
      'single seed).'
  ]
  caption += [
      f'{label}: ' * bool(label) + tables.trend_text(fit, info)
      for label, fit in fits.items()
  ]
  caption += notes
  fig, ax = new_figure(caption)
  ax.axhline(0, color='gray', linewidth=0.8)
  curves = group_curves(gains, lambda g: g.sam, axis, curve_keys)
  for index, (label, members) in enumerate(curves.items()):
    estimates = [g.estimate for g in members]
    xs = [axis.value(g.sam) for g in members]
    ax.errorbar(
        xs,
        [info.scale * e.mean for e in estimates],
        yerr=_yerr(estimates, info.scale),
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
          [
              info.scale * (trend.intercept + trend.slope * axis.x(x))
              for x in ends
          ],
          color=f'C{index}',
          linestyle=':',
          linewidth=1.2,
      )
  _finish(
      fig,
      ax,
      axis,
      info.gain_label,
      f'{setting_title([g.sam for g in gains])}: SAM − SGD, mean ± 95% CI; '
      'dotted: OLS fit',
      path,
  )


def plot_tuned(
    choices: Sequence[Any],
    key: str,
    axis: XAxis,
    curve_keys: Sequence[str],
    notes: Sequence[str],
    path: pathlib.Path,
) -> None:
  """The value of `key` each group chose (reporting.tuning.Choice) against
  `axis`, by optimizer and curve (log-y where every value is positive);
  optimizers that do not read `key` are left out."""
  chosen = [c for c in choices if c.values[key] is not None]
  fig, ax = new_figure(
      [
          f'The {key} with the best mean tuning metric in each setting '
          '(report.py --tune; tuned.csv).',
          *notes,
      ]
  )
  curves = group_curves(chosen, lambda c: c.setting, axis, curve_keys)
  for index, (label, members) in enumerate(curves.items()):
    for optimizer in sorted({c.setting.optimizer for c in members}):
      points = [c for c in members if c.setting.optimizer == optimizer]
      ax.plot(
          [axis.value(c.setting) for c in points],
          [c.values[key] for c in points],
          marker='o',
          color=f'C{index}',
          label=', '.join(filter(None, [optimizer.upper(), label])),
      )
  if all(c.values[key] > 0 for c in chosen):
    ax.set_yscale('log')
  _finish(
      fig,
      ax,
      axis,
      f'chosen {key}',
      f'{setting_title([c.setting for c in chosen])}: chosen {key}',
      path,
  )
