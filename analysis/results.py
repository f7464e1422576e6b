"""What analyze.py writes: the measurements of analysis.parts on a trained
state (measure.Analyzer's), as JSON-ready results and arrays for figures,
and their TensorBoard scalars."""

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from analysis import hessian
from analysis.measure import Analyzer
from runs import run_state


def density_grid(
    quadrature: hessian.Quadrature, num_points: int, sigma_fraction: float
) -> tuple[np.ndarray, np.ndarray, float]:
  """(grid, spectral density, sigma): sigma is `sigma_fraction` of the
  range of the nodes; the grid extends 5 sigma beyond them."""
  low, high = float(quadrature.nodes.min()), float(quadrature.nodes.max())
  sigma = sigma_fraction * max(high - low, 1e-12)
  grid = np.linspace(low - 5 * sigma, high + 5 * sigma, num_points)
  density = hessian.spectral_density(
      jax.tree.map(jnp.asarray, quadrature), jnp.asarray(grid), sigma
  )
  return grid, np.asarray(density), sigma


def _timed(seconds: dict[str, float], name: str, fn, *args, **kwargs):
  start = time.perf_counter()
  result = fn(*args, **kwargs)
  seconds[name] = time.perf_counter() - start
  return result


def _hessian(
    analyzer: Analyzer, state: run_state.TrainState, seconds: dict[str, float]
) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
  """The Hessian's top eigenvalues, its most negative one (if
  analysis.most_negative_eigenvalue) and trace, and unless
  analysis.slq_probes is 0 its spectral moments (results) and SLQ density
  (arrays; None without)."""
  settings = analyzer.settings
  values, residuals, _, lanczos_steps = _timed(
      seconds,
      'eigenvalues',
      analyzer.eigenpairs,
      state,
      settings.lanczos_iterations,
      settings.top_k,
      converge_smallest=settings.most_negative_eigenvalue,
  )
  trace, trace_stderr, trace_probes = _timed(
      seconds, 'trace', analyzer.trace, state, settings.hutchinson_probes
  )
  results = {
      'top_eigenvalues': values[:-1].tolist(),
      # ||H y - theta y||: an eigenvalue of H lies within it of theta.
      'top_eigenvalue_residuals': residuals[:-1].tolist(),
      # Steps Lanczos took to reach analysis.lanczos_tolerance.
      'lanczos_steps': lanczos_steps,
      'trace': trace,
      'trace_stderr': trace_stderr,
      # Probes Hutchinson took to reach analysis.trace_tolerance.
      'trace_probes': trace_probes,
  }
  if settings.most_negative_eigenvalue:
    results.update(
        most_negative_eigenvalue=float(values[-1]),
        most_negative_eigenvalue_residual=float(residuals[-1]),
    )
  if not settings.slq_probes:
    return results, None
  quadrature = _timed(seconds, 'slq', analyzer.quadrature, state)
  moments, moments_stderr = hessian.mean_and_stderr(
      hessian.quadrature_moments(
          quadrature, list(range(1, settings.num_moments + 1))
      )
  )
  grid, density, sigma = density_grid(
      quadrature, settings.density_points, settings.density_sigma
  )
  results.update(
      {
          # E[lambda^k] = tr(H^k) / num_free_params, k = 1, 2, ...
          'moments': moments.tolist(),
          'moments_stderr': moments_stderr.tolist(),
          'density_sigma': sigma,
      }
  )
  arrays = {
      'eigenvalues': grid,
      'density': density,
      'nodes': quadrature.nodes,
      'weights': quadrature.weights,
  }
  return results, arrays


def full_analysis(
    analyzer: Analyzer,
    state: run_state.TrainState,
    other: run_state.TrainState | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
  """The measurements of analysis.parts: (JSON-ready results, arrays for
  grids and figures).

  Seconds per measurement (compilation included) are in results['seconds'].
  """
  settings = analyzer.settings
  seconds = {}
  metrics = _timed(seconds, 'metrics', analyzer.metrics, state)
  results = {
      'step': int(state.step),
      'num_examples': settings.num_examples,
      'num_params': run_state.count_params(state.params),
      'num_free_params': int(
          jnp.sum(hessian.flat_support(state.params, state.mask))
      ),
      'devices': jax.device_count(),
      'loss': metrics['loss'],
      'accuracy': metrics['accuracy'],
  }
  arrays = {}
  if 'hessian' in settings.parts:
    results['hessian'], density = _hessian(analyzer, state, seconds)
    if density is not None:
      arrays['spectral_density'] = density
  if 'sharpness' in settings.parts:
    measured = _timed(seconds, 'sharpness', analyzer.sharpness, state)
    average, average_stderr = hessian.mean_and_stderr(
        measured.pop('average_samples')
    )
    results['sharpness'] = {
        **{k: float(v) for k, v in measured.items()},
        'average': float(average),
        'average_stderr': float(average_stderr),
    }
  if 'landscape' in settings.parts:
    surfaces = _timed(seconds, 'landscape', analyzer.landscape, state)
    arrays['landscape_1d'] = {
        'alphas': surfaces['alphas'],
        'loss': surfaces['line']['loss'],
        'accuracy': surfaces['line']['accuracy'],
    }
    arrays['landscape_2d'] = {
        'alphas': surfaces['grid'],
        'betas': surfaces['grid'],
        'loss': surfaces['plane']['loss'],
        'accuracy': surfaces['plane']['accuracy'],
    }
  results['settings'] = settings.to_dict()
  if other is not None:
    path = _timed(
        seconds, 'interpolation', analyzer.interpolation, state, other
    )
    arrays['interpolation'] = {
        'ts': path['ts'],
        'loss': path['path']['loss'],
        'accuracy': path['path']['accuracy'],
    }
  results['seconds'] = seconds
  return results, arrays


def scalars(results: dict[str, Any]) -> dict[str, float]:
  """The TensorBoard scalars of `full_analysis`'s results."""
  out = {}
  if 'hessian' in results:
    hessian_results = results['hessian']
    out.update(
        {
            'hessian/top_eigenvalue': hessian_results['top_eigenvalues'][0],
            'hessian/trace': hessian_results['trace'],
        }
    )
    if 'most_negative_eigenvalue' in hessian_results:
      out['hessian/most_negative_eigenvalue'] = hessian_results[
          'most_negative_eigenvalue'
      ]
    for order, moment in enumerate(hessian_results.get('moments', ()), start=1):
      out[f'hessian/moment_{order}'] = moment
  for name, value in results.get('sharpness', {}).items():
    if not name.endswith('_stderr'):
      out[f'sharpness/{name}'] = value
  return out
