"""The numbers of report.py: settings, seed pairing, intervals and trends.

Runs whose configs differ only in the seed (and keys that do not change what
is trained) are seeds of one Setting; a Gain is SAM minus SGD on a setting,
paired by seed. Every interval is a two-sided CONFIDENCE (95%) t-interval;
accuracies are fractions.
"""

import collections
from collections.abc import Callable, Mapping, Sequence
import dataclasses
import json
import math
from typing import Any

import numpy as np
from scipy import stats

from configs import default

CONFIDENCE = 0.95
# Keys that tell the seeds of a setting apart, or that do not change what is
# trained: runs differing only in these are averaged together.
RUN_ONLY_KEYS = default.SEED_KEYS + default.TRAJECTORY_NEUTRAL_KEYS
WIDTH_KEYS = default.WIDTH_KEYS
# summary.json's status of a completed run (train.py's rundir.FINISHED; not
# imported, so that the report needs neither JAX nor Orbax).
FINISHED = 'finished'
# Interval methods, as written to the CSVs.
ONE_SAMPLE_T = 't'
PAIRED_T = 'paired-t'
WELCH_T = 'welch-t'
# Trend methods: OLS over every (setting, seed) difference, or over the
# settings' mean gains where some setting's seeds do not pair.
OLS_PAIRED = 'ols-paired-seeds'
OLS_MEANS = 'ols-setting-means'


@dataclasses.dataclass(frozen=True)
class Estimate:
  """A mean (or a difference of means), its CONFIDENCE interval and the
  two-sided p-value of the t-test of it being 0 (nan where undefined)."""

  mean: float
  low: float
  high: float
  p_value: float
  method: str


@dataclasses.dataclass(frozen=True)
class Trend:
  """An OLS line y = intercept + slope * x with the slope's CONFIDENCE
  interval and the two-sided p-value of slope = 0."""

  slope: float
  low: float
  high: float
  intercept: float
  p_value: float
  n_points: int


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """Mean and sample std (n - 1 in the denominator; nan for one value)."""
  std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
  return float(np.mean(values)), std


def _t_estimate(
    mean: float, standard_error: float, dof: float, method: str
) -> Estimate:
  """mean ± t_{(1+CONFIDENCE)/2, dof} * standard_error, and the p-value
  2 P(T_dof > |mean / standard_error|).

  A zero standard error (identical values) gives a zero-width interval.
  """
  if standard_error == 0:
    return Estimate(mean, mean, mean, 0.0 if mean else math.nan, method)
  half_width = stats.t.ppf((1 + CONFIDENCE) / 2, dof) * standard_error
  p_value = 2 * stats.t.sf(abs(mean / standard_error), dof)
  return Estimate(
      mean, mean - half_width, mean + half_width, float(p_value), method
  )


def t_interval(values: Sequence[float], method: str = ONE_SAMPLE_T) -> Estimate:
  """The mean of n values ± t_{0.975, n-1} * sd / sqrt(n), sd the sample std;
  interval and p-value nan for n = 1.

  On per-seed differences SAM - SGD this is the paired t-interval (that of
  scipy.stats.ttest_rel).
  """
  values = np.asarray(values, dtype=float)
  if len(values) < 2:
    return Estimate(float(values.mean()), math.nan, math.nan, math.nan, method)
  return _t_estimate(
      float(values.mean()),
      float(values.std(ddof=1) / math.sqrt(len(values))),
      len(values) - 1,
      method,
  )


def welch_t(a: Sequence[float], b: Sequence[float]) -> Estimate:
  """mean(a) - mean(b) ± t_{0.975, dof} * se for independent samples, with
  se^2 = s_a^2/n_a + s_b^2/n_b and the Welch-Satterthwaite
  dof = se^4 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1)), as
  scipy.stats.ttest_ind(equal_var=False); nan unless n_a, n_b >= 2.
  """
  a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
  difference = float(a.mean() - b.mean())
  if min(len(a), len(b)) < 2:
    return Estimate(difference, math.nan, math.nan, math.nan, WELCH_T)
  var_a, var_b = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
  if var_a + var_b == 0:
    return _t_estimate(difference, 0.0, math.nan, WELCH_T)
  dof = (var_a + var_b) ** 2 / (
      var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1)
  )
  return _t_estimate(difference, math.sqrt(var_a + var_b), dof, WELCH_T)


def ols_trend(x: Sequence[float], y: Sequence[float]) -> Trend:
  """scipy.stats.linregress of y on x (two distinct x at least), with the
  slope's interval slope ± t_{0.975, n-2} * stderr and its p-value.

  With two points the residual variance is undefined: interval and p-value
  are nan (linregress would give a stderr and p-value of 0).
  """
  fit = stats.linregress(x, y)
  if len(x) < 3:
    return Trend(
        float(fit.slope),
        math.nan,
        math.nan,
        float(fit.intercept),
        math.nan,
        len(x),
    )
  half_width = stats.t.ppf((1 + CONFIDENCE) / 2, len(x) - 2) * fit.stderr
  return Trend(
      float(fit.slope),
      float(fit.slope - half_width),
      float(fit.slope + half_width),
      float(fit.intercept),
      float(fit.pvalue),
      len(x),
  )


@dataclasses.dataclass(frozen=True)
class Setting:
  """The finished runs (summaries) of one config, over seeds."""

  config: dict[str, Any]  # Without RUN_ONLY_KEYS (nor SAM's keys for SGD).
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

  def values(self, metric: str) -> list[float]:
    return [run[metric] for run in self.runs]

  def stats(self, metric: str) -> tuple[float, float]:
    return mean_std(self.values(metric))

  def estimate(self, metric: str) -> Estimate:
    """The mean over seeds with its t-interval."""
    return t_interval(self.values(metric))

  def by_seed(self, metric: str) -> dict[Any, float]:
    """`metric` of each seed that occurs once in this setting."""
    seeds = [run['config'].get('seed') for run in self.runs]
    return {
        seed: run[metric]
        for seed, run in zip(seeds, self.runs)
        if seeds.count(seed) == 1
    }


@dataclasses.dataclass(frozen=True)
class Gain:
  """SAM minus SGD on one setting (the SAM one's config, less the optimizer)."""

  sgd: Setting
  sam: Setting
  metric: str

  @property
  def differences(self) -> list[float]:
    """SAM - SGD of each seed both settings ran (once each): the two runs
    share initialization, data order and noisy labels."""
    sgd, sam = self.sgd.by_seed(self.metric), self.sam.by_seed(self.metric)
    return [sam[seed] - sgd[seed] for seed in sorted(sam.keys() & sgd.keys())]

  @property
  def estimate(self) -> Estimate:
    """The mean paired difference (runs without a partner seed left out);
    Welch's difference of the means of all runs when no seed pairs."""
    if self.differences:
      return t_interval(self.differences, PAIRED_T)
    return welch_t(self.sam.values(self.metric), self.sgd.values(self.metric))

  @property
  def mean(self) -> float:
    return self.estimate.mean


@dataclasses.dataclass(frozen=True)
class XAxis:
  """A quantity the figures are drawn, and the gain regressed, against."""

  name: str  # In the file names.
  label: str
  keys: tuple[str, ...]  # The config keys a sweep varies it by.
  value: Callable[[Setting], float]
  log: bool  # Log-x figures; the trend is then linear in log10 of the value.
  variable: str
  points: str  # What the settings along the axis are, for captions.
  per: str  # The slope's unit is the metric's per this.
  # A key of SAM's alone (rho), which SGD settings do not have.
  sam_only: bool = False

  @property
  def regressor(self) -> str:
    return f'log10({self.variable})' if self.log else self.variable

  def x(self, value: float) -> float:
    """The regressor at the axis value `value`."""
    return math.log10(value) if self.log else value


X_AXES = (
    XAxis(
        'params',
        'number of parameters',
        WIDTH_KEYS,
        lambda s: s.num_params,
        True,
        'num_params',
        'widths',
        'decade',
    ),
    XAxis(
        'sparsity',
        'sparsity (measured fraction of zero weights)',
        ('sparsity',),
        lambda s: s.achieved_sparsity,
        False,
        'achieved_sparsity',
        'sparsities',
        'unit sparsity',
    ),
    XAxis(
        'label_noise',
        'label noise (fraction of training labels)',
        ('label_noise',),
        lambda s: s.config['label_noise'],
        False,
        'label_noise',
        'noise levels',
        'unit noise',
    ),
    XAxis(
        'rho',
        'rho (radius of the ascent)',
        ('rho',),
        lambda s: s.config['rho'],
        True,
        'rho',
        'rhos',
        'decade of rho',
        sam_only=True,
    ),
)


@dataclasses.dataclass(frozen=True)
class CurveTrend:
  """The gain's OLS trend along one curve (fixed values of the other keys)."""

  axis: XAxis
  curve: dict[str, Any]  # The values of the keys fixed along the curve.
  gains: tuple[Gain, ...]
  method: str  # OLS_PAIRED or OLS_MEANS.
  trend: Trend


def fit_trend(
    gains: Sequence[Gain], axis: XAxis, curve_keys: Sequence[str]
) -> CurveTrend | None:
  """OLS of SAM - SGD on the axis's regressor along one curve; None below
  two distinct x.

  One point per (setting, seed) pair, y = that seed's difference, when every
  setting has paired seeds; else one point per setting, y = its mean gain,
  all weighted equally.
  """
  xs = [axis.x(axis.value(g.sam)) for g in gains]
  if len(set(xs)) < 2:
    return None
  if all(g.differences for g in gains):
    points = [(x, d) for x, g in zip(xs, gains) for d in g.differences]
    method = OLS_PAIRED
  else:
    points = [(x, g.mean) for x, g in zip(xs, gains)]
    method = OLS_MEANS
  x, y = zip(*points)
  return CurveTrend(
      axis,
      {k: gains[0].sam.config.get(k) for k in curve_keys},
      tuple(gains),
      method,
      ols_trend(x, y),
  )


def finished(summary: dict[str, Any]) -> bool:
  """Whether the run completed (summaries predating "status" did)."""
  return summary.get('status', FINISHED) == FINISHED


def setting_config(config: dict[str, Any]) -> dict[str, Any]:
  """What identifies the setting a run with `config` belongs to: its keys
  but the seeds', without those its optimizer or SAM variant does not
  read."""
  sgd = config['optimizer'] == 'sgd'
  unread = (
      set()
      if sgd
      else default.unread_variant_keys(config.get('sam_variant', 'sam'))
  )
  return {
      k: v
      for k, v in config.items()
      if k not in RUN_ONLY_KEYS
      and not (sgd and default.is_sam_only(k))
      and k not in unread
  }


def canonical(config: dict[str, Any]) -> str:
  return json.dumps(config, sort_keys=True)


def duplicates(summaries: Mapping[Any, dict[str, Any]]) -> dict[Any, Any]:
  """The runs that repeat an earlier one (by key order): same setting and
  same seed, so the same training (SGD runs that differ only in rho, a
  replica and the separate run of its seed, a copied directory), as
  {key: the earlier run's key}. Each run counts once as a seed."""
  first, repeated = {}, {}
  for key, summary in summaries.items():
    identity = canonical(
        [setting_config(summary['config']), summary['config'].get('seed')]
    )
    if identity in first:
      repeated[key] = first[identity]
    else:
      first[identity] = key
  return repeated


def group_settings(summaries: Sequence[dict[str, Any]]) -> list[Setting]:
  """The summaries grouped by setting, in first-seen order (see duplicates:
  a seed that repeats raises, as it would count one run twice)."""
  groups = collections.defaultdict(list)
  for summary in summaries:
    groups[canonical(setting_config(summary['config']))].append(summary)
  settings = [
      Setting(setting_config(runs[0]['config']), tuple(runs))
      for runs in groups.values()
  ]
  for setting in settings:
    repeated = sorted({s for s in setting.seeds if setting.seeds.count(s) > 1})
    if repeated:
      raise ValueError(
          f'seeds {repeated} appear more than once in the '
          f'setting {setting.config}; drop duplicates first'
      )
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


def pair_gains(settings: Sequence[Setting], metric: str) -> list[Gain]:
  """SAM minus SGD for each SAM setting that has an SGD partner.

  The partner is the SGD setting equal in every key but the optimizer and
  SAM-only keys.
  """

  def partner_key(setting: Setting) -> str:
    return canonical(
        {
            k: v
            for k, v in setting.config.items()
            if k != 'optimizer' and not default.is_sam_only(k)
        }
    )

  sgd = {partner_key(s): s for s in settings if s.optimizer == 'sgd'}
  return [
      Gain(sgd[partner_key(s)], s, metric)
      for s in settings
      if s.optimizer == 'sam' and partner_key(s) in sgd
  ]
