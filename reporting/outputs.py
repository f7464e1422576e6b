"""What report.py writes into a sweep's directory: the files it owns
(removed before a new report writes them), the captions' note on the runs
left out, and a figure drawn or skipped with one line."""

import collections
from collections.abc import Callable, Mapping, Sequence
import pathlib
import re
from typing import Any

from reporting import metrics

# What report.py writes into a sweep's directory; an earlier report's files
# of these names are removed first, so that none outlives the data it drew
# (and '{metric}_vs_*.png' for each metric of the runs' tasks).
OUTPUT_PATTERNS = (
    'results.csv',
    'sam_gain.csv',
    'trend.csv',
    'trend.json',
    'hessian_vs_*.png',
    'stability_vs_*.png',
    'functions_by_*.png',
    'sam_gain_vs_*.png',
    'rates.csv',
    'tuned.csv',
    'tuned_trend.csv',
    'tuned_*_vs_*.png',
    'train_loss_vs_steps.png',
    # The metric of --rate_window, which no task declares.
    'linear_rate_vs_*.png',
)


def unused_note(unused: Mapping[pathlib.Path, tuple[str, Any]]) -> list[str]:
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


def remove_earlier_outputs(
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


def draw(
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
