"""The analysis settings (`config.analysis`, documented in
configs/default.py) and their checks, made before any data is loaded."""

import jax
import ml_collections

from analysis import parts
from configuration import config_util

# The config keys the analysis reads.
CONFIG_KEYS = ('analysis', 'analysis_every_epochs')


def check(config: ml_collections.ConfigDict) -> None:
  """Raises config_util.ConfigError for the first bad analysis setting."""
  settings = config.analysis
  devices = jax.device_count()
  per_device = settings.batch_size // devices
  # An agent's PPO loss is taken over its whole rollout (rl/analysis.py
  # checks its num_examples and m).
  batched = not config.get('environment')
  checks = [
      (
          len(settings.parts) >= 1 and set(settings.parts) <= set(parts.PARTS),
          f'analysis.parts must name some of {", ".join(parts.PARTS)}, got '
          f'{tuple(settings.parts)}',
      ),
      (
          config.analysis_every_epochs >= 0,
          f'analysis_every_epochs must be >= 0 (0 = off), got '
          f'{config.analysis_every_epochs}',
      ),
      (
          settings.num_examples >= 1 and settings.batch_size >= 1,
          'analysis.num_examples and analysis.batch_size must be >= 1',
      ),
      (
          not batched or settings.num_examples % settings.batch_size == 0,
          f'analysis.num_examples {settings.num_examples} is not a multiple of '
          f'analysis.batch_size {settings.batch_size}',
      ),
      (
          not batched or settings.batch_size % devices == 0,
          f'analysis.batch_size {settings.batch_size} is not divisible by the '
          f'{devices} devices',
      ),
      (
          not batched
          or settings.m == 0
          or (settings.m >= 1 and per_device % settings.m == 0),
          f'analysis.m {settings.m} must be 0 (off) or divide the per-device '
          f'batch (analysis.batch_size / devices = {per_device})',
      ),
      (
          settings.trace_tolerance >= 0,
          f'analysis.trace_tolerance must be >= 0 (0 = every probe), got '
          f'{settings.trace_tolerance}',
      ),
      (
          settings.lanczos_tolerance >= 0,
          f'analysis.lanczos_tolerance must be >= 0 (0 = every step), got '
          f'{settings.lanczos_tolerance}',
      ),
      (
          1 <= settings.top_k < settings.lanczos_iterations,
          f'analysis.top_k ({settings.top_k}) must be >= 1 and below '
          f'analysis.lanczos_iterations ({settings.lanczos_iterations})',
      ),
      (
          settings.hutchinson_probes >= 2 and settings.noise_samples >= 2,
          'analysis.hutchinson_probes and noise_samples must be >= 2 (a '
          'standard error needs two samples)',
      ),
      (
          settings.slq_probes == 0 or settings.slq_probes >= 2,
          f'analysis.slq_probes must be 0 (no spectral density or moments) or '
          f'>= 2 (a standard error needs two samples), got '
          f'{settings.slq_probes}',
      ),
      (
          1 <= settings.num_moments <= 2 * settings.slq_iterations - 1,
          f'analysis.num_moments ({settings.num_moments}) must be in [1, '
          '2 * analysis.slq_iterations - 1] (the degrees Gauss quadrature '
          'integrates exactly)',
      ),
      (
          settings.density_points >= 2 and settings.density_sigma > 0,
          'analysis.density_points must be >= 2 and density_sigma > 0',
      ),
      (
          settings.rho > 0
          and settings.adaptive_rho > 0
          and settings.noise_sigma > 0
          and settings.adaptive_eta > 0,
          'analysis.rho, adaptive_rho, adaptive_eta and noise_sigma must be '
          '> 0',
      ),
      (
          settings.ascent_steps >= 1,
          f'analysis.ascent_steps must be >= 1, got {settings.ascent_steps}',
      ),
      (
          settings.landscape_points >= 2
          and settings.landscape_2d_points >= 2
          and settings.interpolation_points >= 2
          and settings.landscape_radius > 0,
          'analysis.landscape_points, landscape_2d_points and '
          'interpolation_points must be >= 2 and landscape_radius > 0',
      ),
      (
          len(settings.interpolation_range) == 2
          and settings.interpolation_range[0] < settings.interpolation_range[1],
          f'analysis.interpolation_range must be (low, high) with low < high, '
          f'got {tuple(settings.interpolation_range)}',
      ),
  ]
  for ok, message in checks:
    if not ok:
      raise config_util.ConfigError(message)


def check_training(config: ml_collections.ConfigDict) -> None:
  """Raises config_util.ConfigError for analysis.training_parts that
  training cannot measure for this run (before any training)."""
  training_parts = tuple(config.analysis.get('training_parts', ()))
  logged = [name for name, part in parts.PARTS.items() if part.scalars]
  config_util.require(
      set(training_parts) <= set(logged),
      f'analysis.training_parts must name parts that log scalars '
      f'({", ".join(logged)}), got {training_parts}',
  )
  config_util.require(
      'stability' not in training_parts or jax.process_count() == 1,
      'analysis part stability runs in one process (its per-example '
      'Hessians are formed on one device); leave it out of '
      'analysis.training_parts in a run of several processes',
  )
  for name in training_parts:
    parts.PARTS[name].check(config)
