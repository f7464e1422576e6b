r"""Aggregates a sweep into tables and figures: python report.py DIR.

Reads every summary.json under DIR, at any depth (sweep.py's run
directories, or the per-replica directories of a run), and groups the runs
into settings: runs whose configs differ only in the seed (and in keys that do
not change what is trained, reporting.stats.RUN_ONLY_KEYS, or that the run's
optimizer or SAM variant does not read) are seeds of one setting. A run
that repeats another (the same setting and seed: an SGD run that differs
only in rho, a replica and its separate run, a copy) counts once. Every
run that cannot be used is listed with the reason and left out of every
statistic, and the figures' captions say how many: runs that did
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
* with --rate_window=FIRST:LAST, the metric is each run's linear rate of
  convergence fitted to its evaluations at log-spaced steps
  (reporting/rates.py), rates.csv lists every run's rate with its 95%
  interval, and train_loss_vs_steps.png draws the runs' training loss;
* with --tune=KEY (e.g. rho), each group of settings that differ only in
  KEY is reported by the one with the best mean --tune_metric (default: the
  final validation value of the primary metric; ties go to the smallest
  value), optionally chosen on --tune_seeds and reported on the others
  (reporting/tuning.py); tuned.csv lists the choices, and
  tuned_KEY_vs_params.png draws the chosen value;
* hessian_vs_params.png (and against the other axes): the top eigenvalue,
  trace and spread E[λ²]/E[λ]² of the final weights' Hessian, where
  `analyze.py --workdir=DIR` has measured every run of a setting (the
  settings measured; also in results.csv), and stability_vs_params.png:
  the sharpness a and non-uniformity s of analyze.py's part 'stability';
  functions_by_params.png: the learned functions of part 'function_1d'.

A figure that cannot be drawn is skipped with a line that says why; the
tables and other figures are still written.

The statistics are in reporting/stats.py; the runs, tables and figures in
reporting/runs.py, tables.py and figures.py.
"""

import collections
from collections.abc import Mapping, Sequence
import functools
import pathlib
import sys
from typing import Any

from absl import app
from absl import flags

from configuration import cli
from reporting import figures
from reporting import metrics
from reporting import outputs
from reporting import rates
from reporting import run_curves
from reporting import runs
from reporting import tables
from reporting import tuning
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


flags.DEFINE_string(
    'rate_window',
    None,
    "FIRST:LAST (steps): the metric is each run's linear rate of "
    'convergence, minus the slope of ln(training loss) per step fitted to '
    'its evaluations at log-spaced steps in the window (runs trained with '
    'config.log_spaced_evals); writes rates.csv and '
    'train_loss_vs_steps.png.',
)


flags.DEFINE_float(
    'rate_floor',
    0.0,
    'With --rate_window: leave out the evaluated steps whose training loss '
    'is at or below this (where the curve bends to a slower mode or to '
    "float32's precision).",
)


flags.DEFINE_multi_string(
    'tune',
    [],
    'A config key (repeatable, e.g. rho) to choose per setting: within the '
    'settings that differ only in the tuned keys, keep the one with the '
    'best mean --tune_metric and report it alone (its test metric and '
    'gains); writes tuned.csv and tuned_KEY_vs_*.png.',
)


flags.DEFINE_string(
    'tune_metric',
    None,
    'The summary entry that chooses --tune (a validation metric, or a loss '
    'where lower is better). Default: the final validation value of the '
    "runs' primary metric.",
)


flags.DEFINE_list(
    'tune_seeds',
    None,
    'Choose --tune on the runs of these seeds and report on the others '
    '(the chosen value is then not measured on the seeds that chose it).',
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


def write_report(
    root: pathlib.Path,
    summaries: Mapping[pathlib.Path, dict[str, Any]],
    metric: str | None = None,
    require_complete: bool = False,
    log10: bool = False,
    rate_window: tuple[int, int] | None = None,
    rate_floor: float = 0.0,
    tune: Sequence[str] = (),
    tune_metric: str | None = None,
    tune_seeds: Sequence[int] | None = None,
) -> list[pathlib.Path]:
  """Writes the CSVs, trend files and figures into `root`; prints the runs
  not used and why, those counted once, the gains and the trends; returns
  the written paths.

  `summaries` (load_summaries's) must include a finished run. `metric` is
  a summary entry of a task metric (reporting.metrics); None: the final
  test value of the runs' primary metric. With `log10`, the statistics
  are of log10 of the metric. With `rate_window` (steps), the metric is
  each run's linear rate over it, above the loss `rate_floor`
  (reporting.rates), and rates.csv and train_loss_vs_steps.png are
  written. With `tune` (config keys), each group of settings that differ
  only in those keys is reported by its best on `tune_metric`
  (reporting.tuning; chosen on `tune_seeds` and reported on the other
  seeds if given), and tuned.csv is written.

  Raises:
    ValueError: `metric` is not a metric of the runs or some run lacks it;
      or, with `require_complete`, a run is not used.
  """
  if (tune_metric or tune_seeds) and not tune:
    raise ValueError('--tune_metric and --tune_seeds need --tune')
  if rate_floor and not rate_window:
    raise ValueError('--rate_floor needs --rate_window')
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
  notes = outputs.unused_note(unused)
  settings = group_settings(list(usable.values()))
  keys = [k for k in varying_keys(settings) if k != 'optimizer']
  settings = tables.sort_settings(settings, [*keys, 'optimizer'])
  runs_used = [run for s in settings for run in s.runs]
  choices = []
  if tune:
    tune_info = metrics.describe(
        tune_metric or metrics.default_entry(runs_used, 'validation'),
        runs_used,
    )
    choices = tuning.choose(settings, tune, tune_info, tune_seeds)
    candidates, settings = settings, [c.setting for c in choices]
    keys = [k for k in varying_keys(settings) if k not in ('optimizer', *tune)]
    runs_used = [run for s in settings for run in s.runs]
  if rate_window and metric:
    raise ValueError('--rate_window and --metric exclude each other')
  if rate_window:
    fits = rates.add_rates(runs_used, *rate_window, rate_floor)
    info = rates.INFO
  else:
    info = metrics.describe(
        metric or metrics.default_entry(runs_used), runs_used
    )
  if log10:
    info = info.in_log10(runs_used)
  outputs.remove_earlier_outputs(root, list(summaries.values()))
  written = [root / 'results.csv']
  tables.write_csv(
      written[-1],
      tables.results_rows(settings, [*keys, 'optimizer'], n_excluded),
  )
  if choices:
    written.append(root / 'tuned.csv')
    tables.write_csv(written[-1], tuning.rows(choices, tune, keys, tune_info))
    params = next(a for a in X_AXES if a.name == 'params')
    trends = [
        trend
        for key in tune
        for trend in tuning.chosen_value_trends(
            candidates,
            key,
            tune_info,
            [k for k in keys if k not in params.keys],
        )
    ]
    if trends:
      written.append(root / 'tuned_trend.csv')
      tables.write_csv(written[-1], trends)
      print(tuning.format_trends(trends))
  if rate_window:
    names = {id(s): str(p.parent.relative_to(root)) for p, s in usable.items()}
    written.append(root / 'rates.csv')
    tables.write_csv(
        written[-1],
        rates.rows(runs_used, fits, [*keys, 'optimizer'], names),
    )
    outputs.draw(
        root / 'train_loss_vs_steps.png',
        functools.partial(
            run_curves.plot_loss_curves, settings, keys, rate_window, notes
        ),
        written,
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
  stable = tables.measured_settings(settings, list(tables.STABILITY_METRICS))
  drawn = tables.measured_settings(settings, ['function_1d_file'])
  for axis in axes:
    curve = curve_keys[axis.name]
    # Against an axis only where two or more points lie along it (a sweep
    # may analyze only its label-noise-free runs).
    spans = lambda group, axis=axis: len({axis.value(s) for s in group}) > 1
    planned = [
        (
            f'{info.name}_vs_{axis.name}.png',
            True,
            functools.partial(
                figures.plot_metric, settings, axis, curve, info, notes
            ),
        ),
        (
            f'hessian_vs_{axis.name}.png',
            spans(hessian),
            functools.partial(
                figures.plot_hessian, hessian, axis, curve, notes
            ),
        ),
        *(
            (
                f'tuned_{key}_vs_{axis.name}.png',
                spans([c.setting for c in choices]),
                functools.partial(
                    figures.plot_tuned, choices, key, axis, curve, notes
                ),
            )
            for key in tune
        ),
        (
            f'functions_by_{axis.name}.png',
            drawn and not axis.sam_only,
            functools.partial(run_curves.plot_functions, drawn, axis, notes),
        ),
        (
            f'stability_vs_{axis.name}.png',
            spans(stable),
            functools.partial(
                figures.plot_hessian,
                stable,
                axis,
                curve,
                notes,
                measures=tables.STABILITY_METRICS,
                method='exact per-example Hessians, part stability',
            ),
        ),
        (
            f'sam_gain_vs_{axis.name}.png',
            bool(gains),
            functools.partial(
                figures.plot_gain,
                gains,
                fits[axis.name],
                axis,
                curve,
                info,
                notes,
            ),
        ),
    ]
    for name, wanted, draw in planned:
      if wanted:
        outputs.draw(root / name, draw, written)
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
        root,
        summaries,
        FLAGS.metric,
        FLAGS.require_complete,
        FLAGS.log10,
        FLAGS.rate_window and rates.parse_window(FLAGS.rate_window),
        FLAGS.rate_floor,
        FLAGS.tune,
        FLAGS.tune_metric,
        FLAGS.tune_seeds and [int(seed) for seed in FLAGS.tune_seeds],
    )
  except ValueError as e:
    sys.exit(f'error: {e}')
  for path in written:
    print(f'wrote {path}')


if __name__ == '__main__':
  app.run(main)
