"""The parts of an analysis (`analysis.parts`), each one object: what it
measures on a trained state, its TensorBoard scalars and its figures.

A `Part` turns an `Analyzer` (measure.py) and a state into JSON-ready
results and arrays for figures; `full_analysis` (results.py), analyze.py's
scalars and its figures loop over the parts a config names, so a new
measurement is a new `Part` here and nothing else names it.
"""

from collections.abc import Callable
import dataclasses
import time
from typing import Any

from etils import epath
import jax
import jax.numpy as jnp
import numpy as np

from analysis import function_1d
from analysis import hessian
from analysis import objective
from analysis import plots
from analysis import recovery
from analysis import stability

Results = dict[str, Any] | None
Arrays = dict[str, Any]


def timed(seconds: dict[str, float], name: str, fn, *args, **kwargs):
  """fn(*args, **kwargs), its wall time recorded as seconds[name]."""
  start = time.perf_counter()
  result = fn(*args, **kwargs)
  seconds[name] = time.perf_counter() - start
  return result


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


@dataclasses.dataclass(frozen=True)
class Part:
  """One measurement of `analysis.parts`.

  Attributes:
    name: its name in analysis.parts, and its key in analysis.json.
    measure: (analyzer, state, seconds) -> (results for analysis.json under
      `name`, or None; arrays by file name, written as NAME.npz). It records
      the time of what it measures in `seconds`.
    scalars: its results -> TensorBoard scalars (None: it logs none, and
      training cannot measure it).
    plot: (output directory, this analysis's arrays, the run's name) -> its
      figures, if its arrays are there.
    check: raises config_util.ConfigError where the part cannot measure a
      run of this config, before training measures it.
  """

  name: str
  measure: Callable[[Any, Any, dict[str, float]], tuple[Results, Arrays]]
  scalars: Callable[[dict[str, Any]], dict[str, float]] | None = None
  plot: Callable[[epath.Path, Arrays, str], None] = lambda *args: None
  # Config checks made before training measures the part (training_parts).
  check: Callable[[Any], None] = lambda config: None


def _measure_hessian(analyzer, state, seconds) -> tuple[Results, Arrays]:
  """The Hessian's top eigenvalues, its most negative one (if
  analysis.most_negative_eigenvalue) and trace, and unless
  analysis.slq_probes is 0 its spectral moments and SLQ density."""
  settings = analyzer.settings
  values, residuals, _, lanczos_steps = timed(
      seconds,
      'eigenvalues',
      analyzer.eigenpairs,
      state,
      settings.lanczos_iterations,
      settings.top_k,
      converge_smallest=settings.most_negative_eigenvalue,
  )
  trace, trace_stderr, trace_probes = timed(
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
    smallest = float(values[-1])
    results.update(
        most_negative_eigenvalue=smallest,
        most_negative_eigenvalue_residual=float(residuals[-1]),
        # The flatness measure of the EPFL report, lambda_max / |lambda_min|:
        # large when the loss curves up far more than it curves down.
        eigenvalue_ratio=float(values[0]) / abs(smallest) if smallest else None,
    )
  if not settings.slq_probes:
    return results, {}
  quadrature = timed(seconds, 'slq', analyzer.quadrature, state)
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
  return results, {
      'spectral_density': {
          'eigenvalues': grid,
          'density': density,
          'nodes': quadrature.nodes,
          'weights': quadrature.weights,
      }
  }


def _hessian_scalars(results: dict[str, Any]) -> dict[str, float]:
  out = {
      'hessian/top_eigenvalue': results['top_eigenvalues'][0],
      'hessian/trace': results['trace'],
  }
  if 'most_negative_eigenvalue' in results:
    out['hessian/most_negative_eigenvalue'] = results[
        'most_negative_eigenvalue'
    ]
  if results.get('eigenvalue_ratio') is not None:
    out['hessian/eigenvalue_ratio'] = results['eigenvalue_ratio']
  for order, moment in enumerate(results.get('moments', ()), start=1):
    out[f'hessian/moment_{order}'] = moment
  return out


def _plot_hessian(outdir: epath.Path, arrays: Arrays, run_name: str) -> None:
  if 'spectral_density' not in arrays:  # analysis.slq_probes = 0.
    return
  density = arrays['spectral_density']
  plots.lines(
      outdir / 'spectral_density.png',
      density['eigenvalues'],
      {'SLQ': density['density']},
      'eigenvalue',
      'density',
      f'Hessian eigenvalue density ({run_name})',
      log_y=True,
  )


def _measure_sharpness(analyzer, state, seconds) -> tuple[Results, Arrays]:
  measured = timed(seconds, 'sharpness', analyzer.sharpness, state)
  average, average_stderr = hessian.mean_and_stderr(
      measured.pop('average_samples')
  )
  return {
      **{k: float(v) for k, v in measured.items()},
      'average': float(average),
      'average_stderr': float(average_stderr),
  }, {}


def _sharpness_scalars(results: dict[str, Any]) -> dict[str, float]:
  return {
      f'sharpness/{name}': value
      for name, value in results.items()
      if not name.endswith('_stderr')
  }


def _measure_landscape(analyzer, state, seconds) -> tuple[Results, Arrays]:
  surfaces = timed(seconds, 'landscape', analyzer.landscape, state)
  return None, {
      'landscape_1d': {
          'alphas': surfaces['alphas'],
          **surfaces['line'],
      },
      'landscape_2d': {
          'alphas': surfaces['grid'],
          'betas': surfaces['grid'],
          **surfaces['plane'],
      },
  }


def _plot_landscape(outdir: epath.Path, arrays: Arrays, run_name: str) -> None:
  if 'landscape_1d' not in arrays:
    return
  line = arrays['landscape_1d']
  plots.lines(
      outdir / 'landscape_1d.png',
      line['alphas'],
      {'loss': line['loss']},
      'alpha (filter-normalized direction)',
      'training loss',
      f'1D loss landscape ({run_name})',
  )
  plane = arrays['landscape_2d']
  for kind, plot in (('contour', plots.contour), ('surface', plots.surface)):
    plot(
        outdir / f'landscape_2d_{kind}.png',
        plane['alphas'],
        plane['betas'],
        plane['loss'],
        f'2D loss landscape ({run_name})',
    )


def _measure_stability(analyzer, state, seconds) -> tuple[Results, Arrays]:
  measured = timed(
      seconds,
      'stability',
      stability.measure,
      objective.analysis_state(state),
      analyzer.data,
      analyzer.objective.spec,
  )
  return measured, {}


def _stability_scalars(results: dict[str, Any]) -> dict[str, float]:
  return {
      'stability/sharpness_a': results['sharpness_a'],
      'stability/non_uniformity_s': results['non_uniformity_s'],
  }


def _measure_recovery(analyzer, state, seconds) -> tuple[Results, Arrays]:
  measured = timed(
      seconds,
      'sparse_recovery',
      recovery.measure,
      analyzer.config,
      state.params,
  )
  return measured, {}


def _recovery_scalars(results: dict[str, Any]) -> dict[str, float]:
  return {
      'recovery/beta_l1': results['beta_l1'],
      'recovery/beta_error_l2': results['beta_error_l2'],
  }


def _measure_function(analyzer, state, seconds) -> tuple[Results, Arrays]:
  arrays = timed(
      seconds,
      'function_1d',
      function_1d.measure,
      analyzer.config,
      objective.analysis_state(state),
  )
  return None, {'function_1d': arrays}


def _plot_function(outdir: epath.Path, arrays: Arrays, run_name: str) -> None:
  if 'function_1d' not in arrays:
    return
  fit = arrays['function_1d']
  plots.function_fit(
      outdir / 'function_1d.png',
      fit['x'],
      fit['prediction'],
      fit['train_x'],
      fit['train_y'],
      f'Learned function ({run_name})',
  )


PARTS = {
    part.name: part
    for part in (
        Part('hessian', _measure_hessian, _hessian_scalars, _plot_hessian),
        Part('sharpness', _measure_sharpness, _sharpness_scalars),
        Part('landscape', _measure_landscape, plot=_plot_landscape),
        Part('stability', _measure_stability, _stability_scalars),
        Part(
            'sparse_recovery',
            _measure_recovery,
            _recovery_scalars,
            check=recovery.check,
        ),
        Part('function_1d', _measure_function, plot=_plot_function),
    )
}
