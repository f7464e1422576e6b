"""Choosing a key per setting on a tuning metric (report.py --tune), as the
papers tune rho for every width, noise level and sparsity.

The settings are grouped by everything but the tuned keys (the optimizer
included: SAM's rho is tuned, SGD, which does not read it, has one
candidate). In each group the candidate with the best mean tuning metric
over its seeds wins (the mean over the seeds it has: a missing run lowers
its n, not its chance); a tie goes to the candidate with the smallest
values of the tuned keys, in the order given. The report then covers the
winners alone: their test metric, and their gains paired by seed.

With `tune_seeds`, candidates are compared on those seeds and the winner is
reported on its other seeds, so that the seeds that chose it do not also
measure it (the selection's optimism stays out of the test gain).

`chosen_value_trends` asks whether the chosen value grows with size (Shin
et al.: the best rho grows with the model): the slope of log10(chosen) on
log10(parameters), with an interval from a bootstrap over seeds.
"""

from collections.abc import Sequence
import dataclasses
import json
from typing import Any

import numpy as np

from reporting.metrics import MetricInfo
from reporting.stats import canonical
from reporting.stats import Setting


@dataclasses.dataclass(frozen=True)
class Choice:
  """A group's winner: its setting (with the runs the report uses), the
  tuned keys' values, and its tuning metric's mean over `n` runs among
  `candidates` compared."""

  setting: Setting
  values: dict[str, Any]
  score: float
  n: int
  candidates: int


def _seed(run: dict[str, Any]) -> Any:
  """The seed by which runs pair (a fine-tune's: its pretraining seed)."""
  seed = run['config'].get('seed')
  return seed[0] if isinstance(seed, (list, tuple)) else seed


def choose(
    settings: Sequence[Setting],
    keys: Sequence[str],
    info: MetricInfo,
    tune_seeds: Sequence[int] | None = None,
) -> list[Choice]:
  """Each group's winner (see the module's docstring), in first-seen order.

  Raises:
    ValueError: a tuned key varies in no group; a run lacks the tuning
      metric; with `tune_seeds`, a group has no run of those seeds, or its
      winner no run of the others.
  """
  groups = _groups(settings, keys)
  for key in keys:
    if not any(
        len({json.dumps(s.config.get(key)) for s in members}) > 1
        for members in groups
    ):
      raise ValueError(
          f'--tune={key}: no two runs differ only in {key}, so there is '
          'nothing to choose (is it a key the sweep varies?)'
      )
  choices = []
  for members in groups:
    scored = []
    for setting in members:
      runs = [
          run
          for run in setting.runs
          if tune_seeds is None or _seed(run) in tune_seeds
      ]
      if not runs:
        print(
            f'not compared: {dict((k, setting.config.get(k)) for k in keys)}'
            f' of {setting.optimizer.upper()} has no run of --tune_seeds'
        )
        continue
      missing = [run for run in runs if run.get(info.entry) is None]
      if missing:
        raise ValueError(
            f'--tune_metric={info.entry} is missing from a run of '
            f'{setting.config}; tune on a metric every run has (a '
            'validation metric needs validation_fraction > 0)'
        )
      mean = sum(run[info.entry] for run in runs) / len(runs)
      values = {k: setting.config.get(k) for k in keys}
      scored.append((mean, values, len(runs), setting))
    if not scored:
      raise ValueError(
          f'no run of --tune_seeds={list(tune_seeds)} in the setting '
          f'{members[0].config}'
      )
    mean, values, n, setting = _winner(scored, info, keys)
    if tune_seeds is not None:
      setting = dataclasses.replace(
          setting,
          runs=tuple(r for r in setting.runs if _seed(r) not in tune_seeds),
      )
      if not setting.runs:
        raise ValueError(
            f'the chosen {values} of {setting.config} has no run outside '
            f'--tune_seeds={list(tune_seeds)} to report'
        )
    choices.append(Choice(setting, values, mean, n, len(scored)))
  return choices


def _groups(
    settings: Sequence[Setting], keys: Sequence[str]
) -> list[list[Setting]]:
  """The settings grouped by everything but `keys`, in first-seen order."""
  groups: dict[str, list[Setting]] = {}
  for setting in settings:
    rest = {k: v for k, v in setting.config.items() if k not in keys}
    groups.setdefault(canonical(rest), []).append(setting)
  return list(groups.values())


def _winner(scored: list[tuple], info: MetricInfo, keys: Sequence[str]):
  """The best of (mean, values, n, setting) candidates: the best mean, and
  among equals the smallest tuned values."""
  sign = 1.0 if info.higher_is_better else -1.0
  return min(scored, key=lambda c: (-sign * c[0], _order(c[1], keys)))


def chosen_value_trends(
    settings: Sequence[Setting],
    key: str,
    info: MetricInfo,
    curve_keys: Sequence[str],
    samples: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
  """Whether the chosen `key` grows with size: per curve (the values of
  `curve_keys`), the OLS slope of log10(chosen value) on log10(parameters)
  over the groups with a positive numeric choice, and its 95% percentile
  interval from resampling each group's seeds with replacement (the same
  draw for every candidate of a group, so that they stay paired) and
  choosing again. Curves of fewer than two sizes are left out."""
  rng = np.random.default_rng(seed)
  groups = [g for g in _groups(settings, [key]) if len(g) > 1]
  curves: dict[str, list[list[Setting]]] = {}
  for members in groups:
    label = ', '.join(f'{k}={members[0].config.get(k)}' for k in curve_keys)
    curves.setdefault(label, []).append(members)

  def choice(members, draw=None):
    scored = []
    for setting in members:
      by_seed = {_seed(run): run for run in setting.runs}
      runs = (
          list(by_seed.values())
          if draw is None
          else [by_seed[s] for s in draw if s in by_seed]
      )
      if runs:
        mean = sum(run[info.entry] for run in runs) / len(runs)
        scored.append(
            (mean, {key: setting.config.get(key)}, len(runs), setting)
        )
    return _winner(scored, info, [key])[1][key]

  def slope(points):
    x, y = zip(*points)
    return np.polyfit(np.log10(x), np.log10(y), 1)[0]

  trends = []
  for label, members_list in curves.items():
    sizes = [m[0].num_params for m in members_list]
    if len(set(sizes)) < 2 or not all(
        isinstance(choice(m), (int, float)) and choice(m) > 0
        for m in members_list
    ):
      continue
    seeds = [
        sorted({_seed(r) for s in m for r in s.runs}) for m in members_list
    ]
    estimate = slope([(n, choice(m)) for n, m in zip(sizes, members_list)])
    resampled = [
        slope(
            [
                (n, choice(m, rng.choice(g, len(g))))
                for n, m, g in zip(sizes, members_list, seeds)
            ]
        )
        for _ in range(samples)
    ]
    low, high = np.percentile(resampled, [2.5, 97.5])
    trends.append(
        {
            'key': key,
            'curve': label,
            # Rounded: a flat choice gives a slope of 1e-17, not 0.
            'slope': round(float(estimate), 12),
            'ci_low': round(float(low), 12),
            'ci_high': round(float(high), 12),
            'sizes': len(set(sizes)),
            'samples': samples,
        }
    )
  return trends


def _order(values: dict[str, Any], keys: Sequence[str]) -> list[Any]:
  """A sort key over tuned values: numbers by value, None (a key the
  optimizer does not read) first, others by their JSON text."""
  order = []
  for key in keys:
    value = values[key]
    if value is None:
      order.append((0, 0.0, ''))
    elif isinstance(value, (int, float)):
      order.append((1, float(value), ''))
    else:
      order.append((2, 0.0, json.dumps(value)))
  return order


def rows(
    choices: Sequence[Choice],
    keys: Sequence[str],
    setting_keys: Sequence[str],
    info: MetricInfo,
) -> list[dict[str, Any]]:
  """tuned.csv: a row per group, its keys, the chosen values, the tuning
  metric's mean and n, and the candidates compared."""
  return [
      {
          **{k: c.setting.config.get(k) for k in setting_keys},
          'optimizer': c.setting.optimizer,
          'num_params': c.setting.num_params,
          **{f'chosen_{k}': c.values[k] for k in keys},
          'tune_metric': info.entry,
          'tune_mean': c.score,
          'tune_n': c.n,
          'candidates': c.candidates,
          'reported_seeds': ' '.join(map(str, c.setting.seeds)),
      }
      for c in choices
  ]


def format_trends(trends: Sequence[dict[str, Any]]) -> str:
  """The printed lines of chosen_value_trends."""
  return '\n'.join(
      [
          'Trend of the chosen value (OLS slope of log10(value) on '
          'log10(num_params), 95% bootstrap interval over seeds):',
          *(
              f"  {t['key']}{', ' + t['curve'] if t['curve'] else ''}: "
              f"{t['slope']:+.3g} decades per decade "
              f"[{t['ci_low']:+.3g}, {t['ci_high']:+.3g}], "
              f"{t['sizes']} sizes, {t['samples']} resamples"
              for t in trends
          ),
      ]
  )
