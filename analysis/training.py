"""What training measures of itself every `config.analysis_every_epochs`
epochs (a train.EpochEvaluator, built by main.py from the config)."""

import time

from absl import logging
import jax
import ml_collections

from analysis import measure
from analysis import parts
from analysis import settings as analysis_settings
from runs import run_state
from runtime import parallel


class TrainingAnalysis:
  """What training logs every config.analysis_every_epochs epochs: each
  replica's top Hessian eigenvalue, trace and one-step sharpness, the
  scalars of the parts config.analysis.training_parts names (analysis/
  parts.py), and the seconds they took (the first time including
  compilation). A train.EpochEvaluator: built before the first epoch, so
  that a bad analysis setting fails before any training."""

  def __init__(
      self, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh
  ):
    analysis_settings.check_training(config)
    self.every_epochs = config.analysis_every_epochs
    self._analyzers = measure.replica_analyzers(
        run_state.replica_configs(config), mesh
    )
    self._parts = [
        parts.PARTS[name] for name in config.analysis.get('training_parts', ())
    ]

  def run(self, state: run_state.TrainState) -> list[dict[str, float]]:
    measured = []
    for replica, analyzer in enumerate(self._analyzers):
      start = time.perf_counter()
      replica_state = (
          parallel.replica(state, replica)
          if len(self._analyzers) > 1
          else state
      )
      scalars = analyzer.training_scalars(replica_state)
      for part in self._parts:
        results, _ = part.measure(analyzer, replica_state, {})
        scalars.update(part.scalars(results))
      seconds = time.perf_counter() - start
      logging.info(
          'replica %d: top Hessian eigenvalue %.4g, trace %.4g, '
          'one-step sharpness %.4g (%.1fs)',
          replica,
          scalars['hessian/top_eigenvalue'],
          scalars['hessian/trace'],
          scalars['sharpness/one_step'],
          seconds,
      )
      measured.append({**scalars, 'analysis/seconds': seconds})
    return measured


def training_evaluators(
    config: ml_collections.ConfigDict,
) -> list[TrainingAnalysis]:
  """The evaluators train.train_and_evaluate runs for `config`: the
  training analysis if config.analysis_every_epochs, else none."""
  if not config.analysis_every_epochs:
    return []
  return [TrainingAnalysis(config, parallel.create_mesh())]
