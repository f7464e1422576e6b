r"""Aggregates a sweep into tables and figures: python report.py DIR.

Reads every summary.json under DIR, at any depth (sweep.py's run
directories, or the per-replica directories of a run), and groups the runs
into settings: runs whose configs differ only in the seed (and in keys that do
not change what is trained, reporting.stats.RUN_ONLY_KEYS) are seeds of one
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
* METRIC_vs_params.png (accuracy_vs_params.png, loss_vs_params.png, ...)
  and sam_gain_vs_params.png (log-x) when the width varies, and the same
  against the measured sparsity, label_noise and SAM's rho (log-x; SGD a
  level) when those vary;
  error bars are 95% intervals; the metric is --metric, the gain SAM − SGD
  in it whichever direction is better (a loss: below 0 is SAM better);
* hessian_vs_params.png (and against the other axes): the top eigenvalue,
  trace and spread E[λ²]/E[λ]² of the final weights' Hessian, where
  `analyze.py --workdir=DIR` has measured every run of a setting (the
  settings measured; also in results.csv).

A figure that cannot be drawn is skipped with a line that says why; the
tables and other figures are still written.

The statistics are in reporting/stats.py; the runs, tables and figures in
reporting/runs.py, tables.py and figures.py.
"""

import collections
from collections.abc import Callable, Mapping, Sequence
import functools
import pathlib
import re
import sys
from typing import Any

from absl import app
from absl import flags

from configuration import cli
from reporting import figures
from reporting import metrics
from reporting import runs
from reporting import tables
from reporting.stats import canonical
from reporting.stats import duplicates
from reporting.stats import finished
from reporting.stats import fit_trend
from reporting.stats import group_settings
from reporting.stats import pair_gains
from reporting.stats import setting_config
from reporting.stats import varying_keys
from reporting.stats import X_AXES

flags.DEFINE_string(
    'metric',
    None,
    'The summary entry plotted and used for the SAM - SGD gain: '
    "{final,best}_{test,validation}_METRIC for a metric of the runs' task "
    '(accuracy, loss, average_precision, ...). Default: the final test '
    "value of the metric that ranks the runs' epochs.",
)


flags.DEFINE_bool(
    'log10',
    False,
    'Statistics on log10 of --metric: the gain is then log10(SAM / SGD) '
    'paired by seed (-1: SAM 10 times lower), for a loss whose values '
    'span orders of magnitude across seeds.',
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
# of these names are removed first, so that none outlives the data it drew
# (and '{metric}_vs_*.png' for each metric of the runs' tasks).
OUTPUT_PATTERNS = (
    'results.csv',
    'sam_gain.csv',
    'trend.csv',
    'trend.json',
    'hessian_vs_*.png',
    'sam_gain_vs_*.png',
)


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


def _remove_earlier_outputs(
    root: pathlib.Path, summaries: Sequence[dict[str, Any]]
) -> None:
  """Removes the files an earlier report wrote (OUTPUT_PATTERNS)."""
  names = {
      m['name'] for s in summaries for m in metrics.declaration(s)['metrics']
  }
  for pattern in (*OUTPUT_PATTERNS, *(f'{n}_vs_*.png' for n in names)):
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
    metric: str | None = None,
    require_complete: bool = False,
    log10: bool = False,
) -> list[pathlib.Path]:
  """Writes the CSVs, trend files and figures into `root`; prints the runs
  not used and why, those counted once, the gains and the trends; returns
  the written paths.

  `summaries` (load_summaries's) must include a finished run. `metric` is
  a summary entry of a task metric (reporting.metrics); None: the final
  test value of the runs' primary metric. With `log10`, the statistics
  are of log10 of the metric.

  Raises:
    ValueError: `metric` is not a metric of the runs or some run lacks it;
      or, with `require_complete`, a run is not used.
  """
  unused = runs.unused_runs(root, summaries)
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
  settings = tables.sort_settings(settings, [*keys, 'optimizer'])
  runs_used = [run for s in settings for run in s.runs]
  info = metrics.describe(metric or metrics.default_entry(runs_used), runs_used)
  if log10:
    info = info.in_log10(runs_used)
  _remove_earlier_outputs(root, list(summaries.values()))
  written = [root / 'results.csv']
  tables.write_csv(
      written[-1],
      tables.results_rows(settings, [*keys, 'optimizer'], n_excluded),
  )
  gains = pair_gains(settings, info.entry)
  if gains:
    written.append(root / 'sam_gain.csv')
    tables.write_csv(written[-1], tables.gain_rows(gains, keys))
    print(tables.format_gains(gains, keys, info))
  axes = [a for a in X_AXES if any(k in a.keys for k in keys)]
  # The keys that make the curves along each axis.
  curve_keys = {a.name: [k for k in keys if k not in a.keys] for a in axes}
  fits = {}  # By axis name, then by curve label.
  for axis in axes:
    curves = figures.group_curves(
        gains, lambda g: g.sam, axis, curve_keys[axis.name]
    )
    fits[axis.name] = {
        label: fit
        for label, members in curves.items()
        if (fit := fit_trend(members, axis, curve_keys[axis.name]))
    }
  all_fits = [fit for by_curve in fits.values() for fit in by_curve.values()]
  if all_fits:
    written += tables.write_trends(root, all_fits, keys, info.entry)
    print(tables.format_trends(all_fits, info))
  hessian = tables.hessian_settings(settings)
  for axis in axes:
    curve = curve_keys[axis.name]
    _draw(
        root / f'{info.name}_vs_{axis.name}.png',
        functools.partial(
            figures.plot_metric, settings, axis, curve, info, notes
        ),
        written,
    )
    # Against an axis only where analyze.py measured two or more points
    # along it (a sweep may analyze only its label-noise-free runs).
    if len({axis.value(s) for s in hessian}) > 1:
      _draw(
          root / f'hessian_vs_{axis.name}.png',
          functools.partial(figures.plot_hessian, hessian, axis, curve, notes),
          written,
      )
    if gains:
      _draw(
          root / f'sam_gain_vs_{axis.name}.png',
          functools.partial(
              figures.plot_gain,
              gains,
              fits[axis.name],
              axis,
              curve,
              info,
              notes,
          ),
          written,
      )
  return written


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    raise app.UsageError('Usage: python report.py DIR')
  cli.tolerate_closed_stdout()
  root = pathlib.Path(argv[1])
  summaries = runs.load_summaries(root)
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
        root, summaries, FLAGS.metric, FLAGS.require_complete, FLAGS.log10
    )
  except ValueError as e:
    sys.exit(f'error: {e}')
  for path in written:
    print(f'wrote {path}')


if __name__ == '__main__':
  app.run(main)
