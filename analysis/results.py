"""What analyze.py writes: the measurements of analysis.parts on a trained
state (measure.Analyzer's, each part an object of parts.py), as JSON-ready
results and arrays for figures, and their TensorBoard scalars."""

from typing import Any

import jax
import jax.numpy as jnp

from analysis import hessian
from analysis import parts
from analysis.measure import Analyzer
from runs import run_state


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
  metrics = parts.timed(seconds, 'metrics', analyzer.metrics, state)
  results = {
      'step': int(state.step),
      'num_examples': settings.num_examples,
      'num_params': run_state.count_params(state.params),
      'num_free_params': int(
          jnp.sum(hessian.flat_support(state.params, state.mask))
      ),
      'devices': jax.device_count(),
      'loss': metrics['loss'],
      **metrics,  # The loss and the task's per-example metrics.
  }
  arrays = {}
  for name in settings.parts:
    measured, part_arrays = parts.PARTS[name].measure(analyzer, state, seconds)
    if measured is not None:
      results[name] = measured
    arrays.update(part_arrays)
  results['settings'] = settings.to_dict()
  if other is not None:
    path = parts.timed(
        seconds, 'interpolation', analyzer.interpolation, state, other
    )
    arrays['interpolation'] = {
        'ts': path['ts'],
        **path['path'],
    }
  results['seconds'] = seconds
  return results, arrays


def scalars(results: dict[str, Any]) -> dict[str, float]:
  """The TensorBoard scalars of `full_analysis`'s results."""
  out = {}
  for name, part in parts.PARTS.items():
    if name in results and part.scalars:
      out.update(part.scalars(results[name]))
  return out
