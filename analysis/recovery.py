"""How far a diagonal linear network's predictor beta = u * v is from the
sparse target theta* of the regression it was trained on
(`sparse_regression`): ||beta||_1, the norm whose implicit minimization
Andriushchenko & Flammarion (ICML 2022) credit for 1-SAM's better test
loss, and ||beta - theta*||_2."""

import ml_collections
import numpy as np

from configuration import config_util
from input_pipeline import synthetic
from models import diagonal


def check(config: ml_collections.ConfigDict) -> None:
  """Raises config_util.ConfigError unless the run is a diagonal network on
  sparse_regression."""
  config_util.require(
      config.model == 'diagonal_linear'
      and config.dataset == 'sparse_regression',
      'analysis part sparse_recovery measures a diagonal_linear network '
      f'trained on sparse_regression, not {config.model} on {config.dataset}',
  )


def measure(config: ml_collections.ConfigDict, params) -> dict[str, float]:
  """||beta||_1, ||theta*||_1 and ||beta - theta*||_2 at `params`."""
  check(config)
  beta = np.asarray(diagonal.beta(params), np.float64)
  theta = synthetic.generate(config)['theta'].astype(np.float64)
  return {
      'beta_l1': float(np.abs(beta).sum()),
      'theta_l1': float(np.abs(theta).sum()),
      'beta_error_l2': float(np.linalg.norm(beta - theta)),
  }
