"""The linear rate of convergence of a run's training loss, fitted to its
evaluations at log-spaced steps (summary.json's `step_evals`, written with
config.log_spaced_evals).

A run converges linearly when L(w_t) <= C exp(-r t) (equivalently
C q^t with q = exp(-r) < 1), a straight line on a plot of log L against t;
Shin et al. (UAI 2025) prove it for SAM on overparameterized networks. The
fitted rate r is minus the OLS slope of ln L(w_t) on t over the evaluated
steps in a window [first, last] (ln L falls by r a step, L by a factor
exp(-r)), with the slope's 95% t-interval. For a minibatch run the
evaluated training loss is one batch's, and the fit is noisier.

The window is the user's, and so is a floor: steps whose loss is at or
below it are left out. Low losses bend the line, to a slower mode (the
smallest eigenvalues of the kernel take over) or flat at float32's
precision, and runs of several widths get there at different steps.
"""

from collections.abc import Mapping, Sequence
import dataclasses
import math
from typing import Any

from reporting import metrics
from reporting import stats

# The summary entry report.py adds to each run (--rate_window).
ENTRY = 'linear_rate'
INFO = metrics.MetricInfo(ENTRY, ENTRY, higher_is_better=True, percent=False)


@dataclasses.dataclass(frozen=True)
class Rate:
  """r, with the 95% interval of the fit, over `points` evaluated steps."""

  rate: float
  low: float
  high: float
  points: int
  first_step: int
  last_step: int


def parse_window(text: str) -> tuple[int, int]:
  """'FIRST:LAST' (steps) -> (first, last).

  Raises:
    ValueError: not two integers with 0 <= FIRST < LAST.
  """
  try:
    first, last = (int(part) for part in text.split(':'))
  except ValueError:
    raise ValueError(
        f'--rate_window={text} is not FIRST:LAST in steps, e.g. 100:10000'
    ) from None
  if not 0 <= first < last:
    raise ValueError(f'--rate_window={text} needs 0 <= FIRST < LAST')
  return first, last


def fit(steps: Sequence[int], losses: Sequence[float]) -> Rate:
  """The rate of ln(losses) against steps (at least 3 points).

  Raises:
    ValueError: fewer than 3 points, or a loss that is not positive.
  """
  if len(steps) < 3:
    raise ValueError(
        f'a rate needs 3 or more evaluated steps, not {len(steps)}'
    )
  if min(losses) <= 0:
    raise ValueError('a rate needs positive losses')
  trend = stats.ols_trend(list(steps), [math.log(l) for l in losses])
  return Rate(
      -trend.slope,
      -trend.high,
      -trend.low,
      len(steps),
      int(min(steps)),
      int(max(steps)),
  )


def run_rate(
    summary: Mapping[str, Any], first: int, last: int, floor: float = 0.0
) -> Rate:
  """A run's rate over its evaluated steps in [first, last] whose training
  loss is above `floor`.

  Raises:
    ValueError: the run has no step_evals, or too few in the window.
  """
  if 'step_evals' not in summary:
    raise ValueError(
        '--rate_window needs the runs trained with '
        'config.log_spaced_evals > 0 (their summary.json step_evals)'
    )
  points = [
      (r['step'], r['train_loss'])
      for r in summary['step_evals']
      if first <= r['step'] <= last and r['train_loss'] > floor
  ]
  if len(points) < 3:
    raise ValueError(
        f'--rate_window={first}:{last} holds {len(points)} evaluated steps '
        f'of a run above a loss of {floor:g}; a rate needs 3 or more: widen '
        'it, lower --rate_floor or evaluate at more steps '
        '(log_spaced_evals)'
    )
  return fit(*zip(*points))


def add_rates(
    runs: Sequence[dict[str, Any]], first: int, last: int, floor: float = 0.0
) -> list[Rate]:
  """Adds each run's rate (run_rate) as its ENTRY (report.py's metric is
  then INFO); returns the fits."""
  fits = []
  for summary in runs:
    fits.append(run_rate(summary, first, last, floor))
    summary[ENTRY] = fits[-1].rate
  return fits


def rows(
    runs: Sequence[dict[str, Any]],
    fits: Sequence[Rate],
    keys: Sequence[str],
    names: Mapping[int, str],
) -> list[dict[str, Any]]:
  """rates.csv: a row per run (named by names[id(run)]), its `keys`, seed
  and fit."""
  return [
      {
          'run': names[id(run)],
          **{k: run['config'].get(k) for k in keys},
          'seed': run['config'].get('seed'),
          **dataclasses.asdict(fit),
      }
      for run, fit in zip(runs, fits)
  ]
