r"""Aggregates a sweep into a table and figures: python report.py DIR.

Reads every summary.json under DIR, at any depth (sweep.py's run
directories, or the per-replica directories of a run), and groups the runs
into settings: runs whose configs differ only in the seed (and in keys that do
not change what is trained, RUN_ONLY_KEYS) are seeds of one setting. Writes
into DIR

* results.csv: one row per setting, mean and std over its seeds;
* sam_gain.csv: SAM minus SGD for each pair of settings that differ only in
  the optimizer;
* accuracy_vs_params.png and sam_gain_vs_params.png (log-x) when the width
  varies, and the same against the measured sparsity and against label_noise
  when those vary.

Stds are sample stds over seeds (n - 1 in the denominator; nan for a single
seed). The gain's std is sqrt(std_SAM^2 + std_SGD^2): the spread of the
difference between one SAM run and one SGD run, taken as independent.
"""

import collections
from collections.abc import Callable, Sequence
import csv
import dataclasses
import json
import math
import pathlib
import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging
# Figure objects, not pyplot: no display or global plotting state involved.
from matplotlib.figure import Figure
import numpy as np

flags.DEFINE_enum('metric', 'final_test_accuracy',
                  ['final_test_accuracy', 'best_test_accuracy'],
                  'Test accuracy plotted and used for the SAM - SGD gain.')
FLAGS = flags.FLAGS

# Keys that tell the seeds of a setting apart, or that do not change what is
# trained: runs differing only in these are averaged together.
RUN_ONLY_KEYS = ('seed', 'num_replicas', 'replica_rho', 'data_dir',
                 'download', 'manual_dir', 'steps_per_dispatch',
                 'eval_batch_size', 'checkpoints_to_keep')
# Keys SGD ignores: SGD runs form one setting whatever their values.
SAM_ONLY_KEYS = ('rho', 'sam_weight_decay_in_ascent', 'sam_m', 'sam_steps',
                 'sam_adaptive', 'sam_eta', 'sam_batchnorm_stats',
                 'sam_start_epoch')
# Summary fields averaged over seeds in results.csv.
METRICS = ('final_test_accuracy', 'best_test_accuracy', 'final_test_loss',
           'final_train_loss', 'final_train_accuracy')
WIDTH_KEYS = ('num_neurons', 'num_filters', 'width_factor')


@dataclasses.dataclass(frozen=True)
class Setting:
  """The runs (summaries) of one config, over seeds."""

  config: dict[str, Any]  # Without RUN_ONLY_KEYS (nor SAM_ONLY_KEYS for SGD).
  runs: tuple[dict[str, Any], ...]

  @property
  def optimizer(self) -> str:
    return self.config['optimizer']

  @property
  def seeds(self) -> list[Any]:
    return sorted(run['config'].get('seed') for run in self.runs)

  @property
  def num_params(self) -> int:
    return self.runs[0]['num_params']

  @property
  def achieved_sparsity(self) -> float:
    return float(np.mean([run['sparsity'] for run in self.runs]))

  def stats(self, metric: str) -> tuple[float, float]:
    return mean_std([run[metric] for run in self.runs])


@dataclasses.dataclass(frozen=True)
class Gain:
  """SAM minus SGD on one setting (the SAM one's config, less the optimizer)."""

  sgd: Setting
  sam: Setting
  metric: str

  @property
  def mean(self) -> float:
    return self.sam.stats(self.metric)[0] - self.sgd.stats(self.metric)[0]

  @property
  def std(self) -> float:
    return math.hypot(self.sam.stats(self.metric)[1],
                      self.sgd.stats(self.metric)[1])


@dataclasses.dataclass(frozen=True)
class XAxis:
  """A quantity the figures are drawn against."""

  name: str  # In the file names.
  label: str
  keys: tuple[str, ...]  # The config keys a sweep varies it by.
  value: Callable[[Setting], float]
  log: bool


X_AXES = (
    XAxis('params', 'number of parameters', WIDTH_KEYS,
          lambda s: s.num_params, True),
    XAxis('sparsity', 'sparsity (measured fraction of zero weights)',
          ('sparsity',), lambda s: s.achieved_sparsity, False),
    XAxis('label_noise', 'label noise (fraction of training labels)',
          ('label_noise',), lambda s: s.config['label_noise'], False),
)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """Mean and sample std (nan for a single value)."""
  std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
  return float(np.mean(values)), std


def load_summaries(root: pathlib.Path) -> list[dict[str, Any]]:
  """Every run summary in the summary.json files under `root`.

  A run of several replicas (config.num_replicas) writes one summary per
  replica in its replica_<r>/ directories, found here like any other, and an
  index summary.json (with 'replica_summaries') that is skipped.
  """
  summaries = []
  for path in sorted(root.rglob('summary.json')):
    content = json.loads(path.read_text())
    if 'replica_summaries' not in content:
      summaries.append(content)
  return summaries


def setting_config(config: dict[str, Any]) -> dict[str, Any]:
  """What identifies the setting a run with `config` belongs to."""
  ignored = RUN_ONLY_KEYS + (SAM_ONLY_KEYS if config['optimizer'] == 'sgd'
                             else ())
  return {k: v for k, v in config.items() if k not in ignored}


def _canonical(config: dict[str, Any]) -> str:
  return json.dumps(config, sort_keys=True)


def group_settings(summaries: Sequence[dict[str, Any]]) -> list[Setting]:
  """The summaries grouped by setting, in first-seen order."""
  groups = collections.defaultdict(list)
  for summary in summaries:
    groups[_canonical(setting_config(summary['config']))].append(summary)
  settings = [Setting(setting_config(runs[0]['config']), tuple(runs))
              for runs in groups.values()]
  for setting in settings:
    repeated = sorted({s for s in setting.seeds if setting.seeds.count(s) > 1})
    if repeated:
      logging.warning('Seeds %s appear more than once in the setting %s '
                      '(copied run directories?); each copy counts.',
                      repeated, setting.config)
  return settings


def varying_keys(settings: Sequence[Setting]) -> list[str]:
  """Config keys that take more than one value across the settings, sorted.

  A key missing from a setting's config (rho for SGD) does not count.
  """
  values = collections.defaultdict(set)
  for setting in settings:
    for key, value in setting.config.items():
      values[key].add(json.dumps(value))
  return sorted(key for key, seen in values.items() if len(seen) > 1)


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


def sort_settings(settings: Sequence[Setting],
                  keys: Sequence[str]) -> list[Setting]:
  return sorted(settings, key=lambda s: [_order(s.config.get(k)) for k in keys])


def pair_gains(settings: Sequence[Setting], metric: str) -> list[Gain]:
  """SAM minus SGD for each SAM setting that has an SGD partner.

  The partner is the SGD setting equal in every key but the optimizer and
  SAM-only keys.
  """

  def partner_key(setting: Setting) -> str:
    return _canonical({k: v for k, v in setting.config.items()
                       if k != 'optimizer' and k not in SAM_ONLY_KEYS})

  sgd = {partner_key(s): s for s in settings if s.optimizer == 'sgd'}
  return [Gain(sgd[partner_key(s)], s, metric) for s in settings
          if s.optimizer == 'sam' and partner_key(s) in sgd]


def write_csv(path: pathlib.Path, rows: Sequence[dict[str, Any]]) -> None:
  with path.open('w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


def results_rows(settings: Sequence[Setting],
                 keys: Sequence[str]) -> list[dict[str, Any]]:
  """results.csv: the varying keys, then seeds, size and mean/std metrics."""
  rows = []
  for setting in settings:
    row = {key: format_value(setting.config.get(key)) for key in keys}
    row.update(n_seeds=len(setting.runs),
               seeds=' '.join(map(str, setting.seeds)),
               num_params=setting.num_params,
               achieved_sparsity=setting.achieved_sparsity)
    for metric in METRICS:
      row[f'{metric}_mean'], row[f'{metric}_std'] = setting.stats(metric)
    rows.append(row)
  return rows


def gain_rows(gains: Sequence[Gain],
              keys: Sequence[str]) -> list[dict[str, Any]]:
  """sam_gain.csv: the setting, then SGD, SAM and their difference."""
  rows = []
  for gain in gains:
    row = {key: format_value(gain.sam.config.get(key)) for key in keys}
    sgd_mean, sgd_std = gain.sgd.stats(gain.metric)
    sam_mean, sam_std = gain.sam.stats(gain.metric)
    row.update(num_params=gain.sam.num_params,
               achieved_sparsity=gain.sam.achieved_sparsity,
               metric=gain.metric, n_seeds_sgd=len(gain.sgd.runs),
               n_seeds_sam=len(gain.sam.runs), sgd_mean=sgd_mean,
               sgd_std=sgd_std, sam_mean=sam_mean, sam_std=sam_std,
               gain_mean=gain.mean, gain_std=gain.std)
    rows.append(row)
  return rows


def _curves(items: Sequence[Any], setting: Callable[[Any], Setting],
            axis: XAxis, keys: Sequence[str]) -> dict[str, list[Any]]:
  """Items grouped by their setting's values of `keys` ('k=v, ...'), each
  group sorted along `axis`."""
  curves = collections.defaultdict(list)
  for item in items:
    label = ', '.join(f'{k}={format_value(setting(item).config.get(k))}'
                      for k in keys)
    curves[label].append(item)
  return {label: sorted(members, key=lambda i: axis.value(setting(i)))
          for label, members in curves.items()}


def _title(settings: Sequence[Setting]) -> str:
  return ', '.join(sorted({f'{s.config.get("dataset")} '
                           f'{s.config.get("model")}' for s in settings}))


def _finish(fig: Figure, ax, axis: XAxis, ylabel: str, title: str,
            path: pathlib.Path) -> None:
  if axis.log:
    ax.set_xscale('log')
  ax.set_xlabel(axis.label)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.grid(True, which='both', alpha=0.3)
  ax.legend(fontsize='small')
  fig.tight_layout()
  fig.savefig(path, dpi=150)


def plot_accuracy(settings: Sequence[Setting], axis: XAxis,
                  curve_keys: Sequence[str], metric: str,
                  path: pathlib.Path) -> None:
  """Accuracy (mean +- std over seeds) against `axis`: a line per optimizer
  and curve, dashed for SGD; one colour per curve, or per optimizer when
  there is one curve."""
  fig = Figure(figsize=(6.4, 4.4))
  ax = fig.add_subplot()
  curves = _curves(settings, lambda s: s, axis, curve_keys)
  optimizers = sorted({s.optimizer for s in settings}, reverse=True)
  for index, (label, members) in enumerate(curves.items()):
    for optimizer in optimizers:
      points = [s for s in members if s.optimizer == optimizer]
      if not points:
        continue
      means, stds = zip(*(s.stats(metric) for s in points))
      color = index if len(curves) > 1 else optimizers.index(optimizer)
      ax.errorbar([axis.value(s) for s in points], 100 * np.array(means),
                  yerr=100 * np.array(stds), color=f'C{color}',
                  linestyle='--' if optimizer == 'sgd' else '-',
                  marker='o' if optimizer == 'sgd' else 's', capsize=3,
                  label=', '.join(filter(None, [optimizer.upper(), label])))
  _finish(fig, ax, axis, f'{metric.replace("_", " ")} (%)',
          f'{_title(settings)}: mean ± std over seeds', path)


def plot_gain(gains: Sequence[Gain], axis: XAxis, curve_keys: Sequence[str],
              path: pathlib.Path) -> None:
  """SAM - SGD (mean +- std) against `axis`, a line per curve."""
  fig = Figure(figsize=(6.4, 4.4))
  ax = fig.add_subplot()
  ax.axhline(0, color='gray', linewidth=0.8)
  curves = _curves(gains, lambda g: g.sam, axis, curve_keys)
  for index, (label, members) in enumerate(curves.items()):
    ax.errorbar([axis.value(g.sam) for g in members],
                [100 * g.mean for g in members],
                yerr=[100 * g.std for g in members], color=f'C{index}',
                marker='s', capsize=3, label=label or 'SAM − SGD')
  metric = gains[0].metric.replace('_', ' ')
  _finish(fig, ax, axis, f'SAM − SGD, {metric} (percentage points)',
          f'{_title([g.sam for g in gains])}: SAM − SGD, mean ± std', path)


def format_gains(gains: Sequence[Gain], keys: Sequence[str]) -> str:
  """One line per setting: SGD, SAM and the gain, in percent."""
  lines = [f'SAM - SGD, {gains[0].metric} (%, mean ± std over seeds):']
  for gain in gains:
    (sgd_mean, sgd_std), (sam_mean, sam_std) = (
        gain.sgd.stats(gain.metric), gain.sam.stats(gain.metric))
    setting = ', '.join(f'{k}={format_value(gain.sam.config.get(k))}'
                        for k in keys)
    lines.append(f'  {setting}: SGD {100 * sgd_mean:.2f} ± {100 * sgd_std:.2f}'
                 f'  SAM {100 * sam_mean:.2f} ± {100 * sam_std:.2f}'
                 f'  gain {100 * gain.mean:+.2f} ± {100 * gain.std:.2f}')
  return '\n'.join(lines)


def write_report(root: pathlib.Path, summaries: Sequence[dict[str, Any]],
                 metric: str) -> list[pathlib.Path]:
  """Writes the CSVs and figures into `root`, prints the gains; returns the
  written paths."""
  settings = group_settings(summaries)
  keys = [k for k in varying_keys(settings) if k != 'optimizer']
  settings = sort_settings(settings, [*keys, 'optimizer'])
  written = [root / 'results.csv']
  write_csv(written[-1], results_rows(settings, [*keys, 'optimizer']))
  gains = pair_gains(settings, metric)
  if gains:
    written.append(root / 'sam_gain.csv')
    write_csv(written[-1], gain_rows(gains, keys))
    print(format_gains(gains, keys))
  for axis in X_AXES:
    if not any(k in keys for k in axis.keys):
      continue
    curve_keys = [k for k in keys if k not in axis.keys]
    written.append(root / f'accuracy_vs_{axis.name}.png')
    plot_accuracy(settings, axis, curve_keys, metric, written[-1])
    if gains:
      written.append(root / f'sam_gain_vs_{axis.name}.png')
      plot_gain(gains, axis, curve_keys, written[-1])
  return written


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    raise app.UsageError('Usage: python report.py DIR')
  root = pathlib.Path(argv[1])
  summaries = load_summaries(root)
  if not summaries:
    sys.exit(f'error: no summary.json under {root}')
  for path in write_report(root, summaries, FLAGS.metric):
    print(f'wrote {path}')


if __name__ == '__main__':
  app.run(main)
