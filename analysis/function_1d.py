"""The function a network with one real input has learned: its outputs on
a grid over its training inputs, beside those inputs and targets. The 1-D
regression figure of Andriushchenko & Flammarion (ICML 2022) and Shin et
al. (UAI 2025): GD's and SAM's fits of Maennel et al.'s 12 points by a
one-hidden-layer ReLU network of 10 and 100 neurons."""

import jax
import ml_collections
import numpy as np

from configuration import config_util
from input_pipeline import sources
from input_pipeline import synthetic
from runs import run_state

# Grid points, over the training inputs' range widened by a tenth each side.
GRID_POINTS = 400


def measure(
    config: ml_collections.ConfigDict, state: run_state.TrainState
) -> dict[str, np.ndarray]:
  """{'x': the grid, 'prediction': the network there, 'train_x',
  'train_y': the training examples}."""
  config_util.require(
      config.dataset in synthetic.KEYS,
      'analysis part function_1d draws a network trained on generated '
      f'regression data ({", ".join(synthetic.KEYS)}), not {config.dataset}',
  )
  data = synthetic.generate(config)
  x, y = data['x'], data['y']
  config_util.require(
      x.shape[1] == 1,
      'analysis part function_1d draws a network with one real input; '
      f'{config.dataset} has {x.shape[1]} (input_dim)',
  )
  margin = 0.1 * (x.max() - x.min())
  grid = np.linspace(x.min() - margin, x.max() + margin, GRID_POINTS)
  spec = sources.dataset_spec(config)
  prediction = jax.jit(
      lambda state, inputs: run_state.inference_logits(
          state, state.params, inputs, spec
      )
  )(state, grid[:, None].astype(np.float32))
  return {
      'x': grid,
      'prediction': np.asarray(prediction).reshape(-1),
      'train_x': x.reshape(-1),
      'train_y': y.reshape(-1),
  }
