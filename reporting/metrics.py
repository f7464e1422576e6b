"""What report.py knows of a summary metric (`final_test_accuracy`,
`best_validation_loss`, ...): which direction is better and whether it reads
in percent, from the declaration of its task's metrics that every
summary.json holds (tasks.declaration), so a task's new metric is reported
without an edit here."""

from collections.abc import Mapping, Sequence
import dataclasses
import math
import re
from typing import Any

# A summary's entry of a task metric: when, on which split, which metric.
ENTRY = re.compile(r'^(final|best)_(test|validation|train)_(.+)$')

# What summaries written before tasks declared their metrics hold: a
# classification task's, and a multi-label set's where its precision is.
_CLASSIFICATION = {
    'primary_metric': 'accuracy',
    'metrics': [
        {'name': 'loss', 'higher_is_better': False, 'percent': False},
        {'name': 'accuracy', 'higher_is_better': True, 'percent': True},
    ],
}
_MULTILABEL = {
    'primary_metric': 'average_precision',
    'metrics': [
        *_CLASSIFICATION['metrics'],
        {
            'name': 'average_precision',
            'higher_is_better': True,
            'percent': True,
        },
    ],
}


def declaration(summary: Mapping[str, Any]) -> dict[str, Any]:
  """The summary's task metrics: {'primary_metric', 'metrics'}."""
  if 'metrics' in summary:
    return {k: summary[k] for k in ('primary_metric', 'metrics')}
  if 'final_test_average_precision' in summary:
    return _MULTILABEL
  return _CLASSIFICATION


@dataclasses.dataclass(frozen=True)
class MetricInfo:
  """A summary entry of a task metric, as the report shows it."""

  entry: str  # The summary's key, e.g. 'final_test_accuracy'.
  name: str  # The task's metric, e.g. 'accuracy'.
  higher_is_better: bool
  percent: bool
  # The statistics are of log10 of the values (`entry` is then the added
  # 'log10_...' entry): a gain of -1 is SAM 10 times lower.
  log10: bool = False

  @property
  def scale(self) -> float:
    """Values are shown times this (100 for percent)."""
    return 100.0 if self.percent and not self.log10 else 1.0

  @property
  def gain_unit(self) -> str:
    """The unit of a difference of two values: 'pp', 'decades' (of log10
    values), or '' (a loss)."""
    if self.log10:
      return 'decades'
    return 'pp' if self.percent else ''

  def in_log10(self, runs: Sequence[dict[str, Any]]) -> 'MetricInfo':
    """This metric's statistics on log10 of its values: adds
    'log10_{entry}' to each of `runs` (summaries) and returns its info.

    Raises:
      ValueError: a value is not positive.
    """
    if any(run[self.entry] <= 0 for run in runs):
      raise ValueError(
          f'--log10 needs {self.entry} > 0 in every run, and some run has '
          f'{min(run[self.entry] for run in runs)}'
      )
    for run in runs:
      run[f'log10_{self.entry}'] = math.log10(run[self.entry])
    return dataclasses.replace(self, entry=f'log10_{self.entry}', log10=True)

  @property
  def label(self) -> str:
    """'final test accuracy (%)', 'final test loss (lower is better)'."""
    text = self.entry.replace('_', ' ')
    if self.percent and not self.log10:
      return f'{text} (%)'
    return text if self.higher_is_better else f'{text} (lower is better)'

  @property
  def gain_label(self) -> str:
    """The axis label of SAM − SGD in this metric."""
    text = f'SAM − SGD, {self.entry.replace("_", " ")}'
    if self.log10:
      ten_times = 'higher' if self.higher_is_better else 'lower'
      return f'{text} (−1: SAM 10x {ten_times})'
    if self.percent:
      return f'{text} (percentage points)'
    return text if self.higher_is_better else f'{text} (below 0: SAM better)'


def default_entry(
    summaries: Sequence[Mapping[str, Any]], split: str = 'test'
) -> str:
  """The final value on `split` of the runs' primary metric."""
  primaries = {declaration(s)['primary_metric'] for s in summaries}
  if len(primaries) > 1:
    raise ValueError(
        'the runs rank their epochs by different metrics ('
        + ', '.join(sorted(primaries))
        + '); choose one with --metric'
    )
  return f'final_{split}_{primaries.pop()}'


def describe(entry: str, summaries: Sequence[Mapping[str, Any]]) -> MetricInfo:
  """`entry` as the runs' tasks declare it.

  Raises:
    ValueError: `entry` is no task metric's entry, or some run lacks it.
  """
  match = ENTRY.match(entry)
  declared = {
      m['name']: m for s in summaries for m in declaration(s)['metrics']
  }
  if not match or match.group(3) not in declared:
    raise ValueError(
        f'--metric={entry} is not a metric of these runs; they have '
        + ', '.join(
            f'{when}_{split}_{name}'
            for name in declared
            for split in ('test', 'validation')
            for when in ('final', 'best')
        )
    )
  missing = sum(s.get(entry) is None for s in summaries)
  if missing:
    why = (
        'trained with validation_fraction > 0, and some runs have no '
        'validation split'
        if match.group(2) == 'validation'
        else f'to have measured it, and {missing} of {len(summaries)} have not'
    )
    raise ValueError(f'--metric={entry} needs every run {why}')
  metric = declared[match.group(3)]
  return MetricInfo(
      entry, metric['name'], metric['higher_is_better'], metric['percent']
  )


def summary_entries(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
  """The summary entries results.csv averages, where every run has them:
  each metric's final test value, its best (by the primary metric) for
  every metric but a loss that does not rank, the training loss and
  per-example metrics, then the same on the validation split."""
  names = []
  for summary in summaries:
    for m in declaration(summary)['metrics']:
      if m['name'] not in names:
        names.append(m['name'])
  primaries = {declaration(s)['primary_metric'] for s in summaries}
  ranked = [n for n in names if n != 'loss' or n in primaries]
  candidates = [
      *(f'final_test_{n}' for n in names),
      *(f'best_test_{n}' for n in ranked),
      *(f'final_train_{n}' for n in names),
      *(f'final_validation_{n}' for n in names),
      *(f'best_validation_{n}' for n in ranked),
  ]
  return [
      entry
      for entry in candidates
      if all(s.get(entry) is not None for s in summaries)
  ]
