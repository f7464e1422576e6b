"""Regression data generated in-process from `config.data_seed` (nothing is
downloaded): the controlled settings in which the papers' theory predicts
the outcome. Every run of a dataset with the same keys and `data_seed` (each
seed, SGD and SAM) trains on the same examples; `data_seed=-1` draws them
from the run's `seed` instead, for experiments whose repetitions are draws
of the data (A&F's diagonal networks, whose GD is deterministic given the
data). SGD and SAM runs of one seed then still share their data, so
report.py pairs them.

* `sparse_regression` (Andriushchenko & Flammarion, ICML 2022, after
  Pesme et al.'s diagonal-network code): inputs X ~ N(0, I_d); a target
  theta* whose first k entries are |N(0, 1)| draws and the rest 0, scaled
  to unit norm; targets y = X theta* + noise * N(0, 1). Their setting is
  n = 20, d = 30, k = 3, no noise, 1,000 test examples.
* `maennel_1d`: the 12 points of Maennel et al. (2018) that both papers'
  one-hidden-layer ReLU code fits: x = [-5.5, -4.5, ..., 5.5] / 4 + 0.07,
  y = 0.345 + [-2, 1.5, 0, 0, 2, 1, 0, -1, 0, 1, 2, -1]. No draw, no test
  set of its own: its test split is the same 12 points.
* `teacher_regression`: X ~ N(0, I_d) and targets from a fixed random
  one-hidden-layer ReLU teacher, y = a . relu(W x) + noise * N(0, 1), with
  W [m, d] ~ N(0, 1/d) and a [m] ~ N(0, 1/m) (m = teacher_width), so that
  y has variance about 1/2 whatever d and m.

The test targets are noise-free (X_test theta*, the teacher's outputs):
the test loss measures the distance to the function that generated the
data.
"""

from collections.abc import Callable

import ml_collections
import numpy as np

from input_pipeline.spec import Split

# The number of training examples when config.num_train_examples is 0
# (the papers' settings).
DEFAULT_TRAIN_EXAMPLES = {'sparse_regression': 20, 'teacher_regression': 1000}

# The config keys each generator reads (beside num_train_examples).
KEYS = {
    'sparse_regression': (
        'input_dim',
        'num_nonzero',
        'target_noise',
        'num_test_examples',
        'data_seed',
    ),
    'maennel_1d': (),
    'teacher_regression': (
        'input_dim',
        'teacher_width',
        'target_noise',
        'num_test_examples',
        'data_seed',
    ),
}

Arrays = dict[str, np.ndarray]


def sparse_regression(
    n: int, d: int, k: int, noise: float, num_test: int, seed: int
) -> Arrays:
  """Training and test inputs and targets with a k-sparse unit-norm
  theta* (see the module docstring); 'theta' holds theta*."""
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, d))
  x_test = rng.standard_normal((num_test, d))
  theta = np.zeros(d)
  theta[:k] = np.abs(rng.standard_normal(k))
  theta /= np.linalg.norm(theta)
  y = x @ theta + noise * rng.standard_normal(n)
  return _float32(x=x, y=y, x_test=x_test, y_test=x_test @ theta, theta=theta)


MAENNEL_X = np.arange(-5.5, 6.0) / 4 + 0.07
MAENNEL_Y = 0.345 + np.array([-2, 1.5, 0, 0, 2, 1, 0, -1, 0, 1, 2, -1.0])


def maennel_1d() -> Arrays:
  """The 12 points, as training and as test split."""
  x = MAENNEL_X[:, None]
  return _float32(x=x, y=MAENNEL_Y, x_test=x, y_test=MAENNEL_Y)


def teacher_regression(
    n: int, d: int, width: int, noise: float, num_test: int, seed: int
) -> Arrays:
  """Targets of a random ReLU teacher (see the module docstring); its
  weights are 'teacher_hidden' [m, d] and 'teacher_output' [m]."""
  rng = np.random.default_rng(seed)
  hidden = rng.standard_normal((width, d)) / np.sqrt(d)
  output = rng.standard_normal(width) / np.sqrt(width)
  teacher = lambda x: np.maximum(x @ hidden.T, 0) @ output
  x = rng.standard_normal((n, d))
  x_test = rng.standard_normal((num_test, d))
  y = teacher(x) + noise * rng.standard_normal(n)
  return _float32(
      x=x,
      y=y,
      x_test=x_test,
      y_test=teacher(x_test),
      teacher_hidden=hidden,
      teacher_output=output,
  )


def _float32(**arrays: np.ndarray) -> Arrays:
  return {k: np.asarray(v, np.float32) for k, v in arrays.items()}


def generate(config: ml_collections.ConfigDict) -> Arrays:
  """The generated dataset config.dataset names, with its config's keys."""
  n = config.num_train_examples or DEFAULT_TRAIN_EXAMPLES.get(config.dataset)
  seed = config.data_seed if config.data_seed >= 0 else config.seed
  makers: dict[str, Callable[[], Arrays]] = {
      'sparse_regression': lambda: sparse_regression(
          n,
          config.input_dim,
          config.num_nonzero,
          config.target_noise,
          config.num_test_examples,
          seed,
      ),
      'maennel_1d': maennel_1d,
      'teacher_regression': lambda: teacher_regression(
          n,
          config.input_dim,
          config.teacher_width,
          config.target_noise,
          config.num_test_examples,
          seed,
      ),
  }
  return makers[config.dataset]()


def read(config: ml_collections.ConfigDict, split: str) -> Split:
  """The generated 'train' or 'test' split."""
  data = generate(config)
  if split == 'train':
    return Split(data['x'], data['y'])
  return Split(data['x_test'], data['y_test'])
