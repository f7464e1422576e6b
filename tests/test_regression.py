"""The regression settings of the theory papers: the generated data against
their definitions, the diagonal linear network's gradient against its hand
derivation, GD, n-SAM and 1-SAM steps against NumPy computations of the
same updates, the MLP's initializations, and epochs of several passes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import diagonal_net
from input_pipeline import synthetic
import models
from runs import run_state
import tasks
from tests.conftest import small_config
import train


def test_sparse_regression_follows_its_definition():
  data = synthetic.sparse_regression(40, 12, 3, 0.0, 500, seed=4)
  theta = data['theta']
  # k nonzero entries, the first ones, nonnegative, unit norm.
  assert np.count_nonzero(theta) == 3 and np.all(theta[:3] > 0)
  assert np.linalg.norm(theta) == pytest.approx(1, rel=1e-6)
  np.testing.assert_allclose(data['y'], data['x'] @ theta, rtol=1e-5)
  np.testing.assert_allclose(data['y_test'], data['x_test'] @ theta, rtol=1e-5)
  assert data['x'].shape == (40, 12) and data['x_test'].shape == (500, 12)
  # Standard normal inputs.
  inputs = np.concatenate([data['x'], data['x_test']]).ravel()
  assert abs(inputs.mean()) < 0.05 and inputs.std() == pytest.approx(
      1, abs=0.05
  )
  # The seed determines the draw; noise reaches the training targets only.
  same = synthetic.sparse_regression(40, 12, 3, 0.0, 500, seed=4)
  np.testing.assert_array_equal(same['x'], data['x'])
  assert not np.array_equal(
      synthetic.sparse_regression(40, 12, 3, 0.0, 500, seed=5)['x'], data['x']
  )
  noisy = synthetic.sparse_regression(4000, 12, 3, 0.5, 500, seed=4)
  residual = noisy['y'] - noisy['x'] @ noisy['theta']
  assert residual.std() == pytest.approx(0.5, rel=0.05)
  np.testing.assert_allclose(
      noisy['y_test'], noisy['x_test'] @ noisy['theta'], rtol=1e-5
  )


def test_maennel_points_are_the_papers_twelve():
  data = synthetic.maennel_1d()
  np.testing.assert_allclose(
      data['x'][:, 0], [-1.305 + 0.25 * i for i in range(12)], rtol=1e-6
  )
  np.testing.assert_allclose(
      data['y'],
      [-1.655, 1.845, 0.345, 0.345, 2.345, 1.345]
      + [0.345, -0.655, 0.345, 1.345, 2.345, -0.655],
      rtol=1e-6,
  )
  np.testing.assert_array_equal(data['x_test'], data['x'])


def test_teacher_targets_are_the_teachers_outputs():
  data = synthetic.teacher_regression(3000, 8, 5, 0.0, 200, seed=1)
  hidden, output = data['teacher_hidden'], data['teacher_output']
  assert hidden.shape == (5, 8) and output.shape == (5,)
  for x, y in ((data['x'], data['y']), (data['x_test'], data['y_test'])):
    np.testing.assert_allclose(
        y, np.maximum(x @ hidden.T, 0) @ output, rtol=1e-5, atol=1e-6
    )


def diagonal_config(**overrides):
  """A&F's setting shrunk: 8 examples in 6 dimensions, 5 full-batch steps."""
  config = diagonal_net.get_config()
  config.update(
      input_dim=6,
      num_nonzero=2,
      num_train_examples=8,
      batch_size=8,
      num_test_examples=50,
      eval_batch_size=50,
      init_scale=0.5,
      learning_rate=0.1,
      num_epochs=1,
      epoch_passes=5,
      steps_per_dispatch=5,
  )
  config.update(overrides)
  return config


def test_data_seed_minus_one_draws_the_data_from_the_runs_seed():
  drawn = synthetic.generate(diagonal_config(data_seed=-1, seed=7))
  fixed = synthetic.generate(diagonal_config(data_seed=7, seed=0))
  np.testing.assert_array_equal(drawn['x'], fixed['x'])
  other = synthetic.generate(diagonal_config(data_seed=-1, seed=8))
  assert not np.array_equal(drawn['x'], other['x'])


def half_squared_error_gradient(u, v, x, y):
  """(dL/du, dL/dv) of L = sum_i (x_i . (u * v) - y_i)^2 / (2 n), by hand:
  dL/dbeta = X^T r / n, and beta = u * v."""
  d_beta = x.T @ (x @ (u * v) - y) / len(y)
  return d_beta * v, d_beta * u


def test_diagonal_network_gradient_is_the_hand_derivation():
  config = diagonal_config()
  model = models.create_model(config, 1)
  data = synthetic.generate(config)
  x, y = data['x'], data['y']
  rng = np.random.default_rng(0)
  u, v = rng.standard_normal((2, 6)).astype(np.float32)
  task = tasks.TASKS['regression']
  grads = jax.grad(
      lambda p: task.losses(model.apply({'params': p}, x), y).mean()
  )({'u': u, 'v': v})
  expected = half_squared_error_gradient(
      u.astype(float), v.astype(float), x.astype(float), y.astype(float)
  )
  np.testing.assert_allclose(grads['u'], expected[0], rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(grads['v'], expected[1], rtol=1e-5, atol=1e-7)


def numpy_training(config, ascent):
  """`config`'s full-batch steps from u = alpha, v = 0, in float64:
  GD (ascent None), n-SAM (one unnormalized ascent on the batch) or 1-SAM
  (each example's own unnormalized ascent on its half squared error, then
  the mean of the examples' gradients at their ascended points)."""
  data = synthetic.generate(config)
  x, y = data['x'].astype(float), data['y'].astype(float)
  u, v = np.full(x.shape[1], config.init_scale), np.zeros(x.shape[1])
  rho = config.rho
  for _ in range(config.num_epochs * config.epoch_passes):
    if ascent is None:
      gu, gv = half_squared_error_gradient(u, v, x, y)
    elif ascent == 'n':
      eu, ev = half_squared_error_gradient(u, v, x, y)
      gu, gv = half_squared_error_gradient(u + rho * eu, v + rho * ev, x, y)
    else:
      gu, gv = np.zeros_like(u), np.zeros_like(v)
      for k in range(len(y)):
        xk, yk = x[k : k + 1], y[k : k + 1]
        eu, ev = half_squared_error_gradient(u, v, xk, yk)
        du, dv = half_squared_error_gradient(u + rho * eu, v + rho * ev, xk, yk)
        gu, gv = gu + du / len(y), gv + dv / len(y)
    u, v = u - config.learning_rate * gu, v - config.learning_rate * gv
  return u, v, data


@pytest.mark.parametrize(
    'overrides,ascent',
    [
        ({}, None),
        ({'optimizer': 'sam', 'rho': 0.3}, 'n'),
        ({'optimizer': 'sam', 'rho': 0.3, 'sam_m': 1}, '1'),
    ],
    ids=['gd', 'n_sam', '1_sam'],
)
def test_gd_n_sam_and_1_sam_steps_match_numpy(tmp_path, overrides, ascent):
  config = diagonal_config(**overrides)
  summary = train.train_and_evaluate(config, str(tmp_path))
  params = run_state.load_checkpoint(tmp_path)[1].params
  u, v, data = numpy_training(config, ascent)
  np.testing.assert_allclose(params['u'], u, rtol=2e-5, atol=1e-7)
  np.testing.assert_allclose(params['v'], v, rtol=2e-5, atol=1e-7)
  # The summary's test loss: half the mean squared error at the end.
  x_test, y_test = data['x_test'].astype(float), data['y_test']
  assert summary['final_test_loss'] == pytest.approx(
      np.mean((x_test @ (u * v) - y_test) ** 2) / 2, rel=1e-4
  )
  assert summary['primary_metric'] == 'loss'
  assert 'final_test_accuracy' not in summary


def test_maennel_initialization_has_the_papers_distributions():
  module = models.mlp.MLP(
      num_neurons=(20_000,),
      num_classes=1,
      initialization='maennel',
      init_scale=0.5,
  )
  params = module.init(jax.random.key(0), jnp.zeros((1, 1)))['params']
  hidden, output = params['Dense_0'], params['Dense_1']
  np.testing.assert_array_equal(np.abs(hidden['kernel']), 1.25)
  assert np.mean(hidden['kernel'] > 0) == pytest.approx(0.5, abs=0.02)
  assert np.std(hidden['bias']) == pytest.approx(1.25, rel=0.03)
  assert np.std(output['kernel']) == pytest.approx(2.0, rel=0.03)
  assert 'bias' not in output


class FlaxDefault(nn.Module):
  """One Dense layer with Flax's own initialization, at the MLP's path."""

  @nn.compact
  def __call__(self, x):
    return nn.Dense(7)(x)


def test_default_initialization_is_flaxs_times_init_scale():
  x = jnp.ones((1, 5))
  key = jax.random.key(3)
  flax_dense = FlaxDefault().init(key, x)['params']['Dense_0']['kernel']
  for scale in (1.0, 3.0):
    module = models.mlp.MLP(num_neurons=(), num_classes=7, init_scale=scale)
    kernel = module.init(key, x)['params']['Dense_0']['kernel']
    np.testing.assert_allclose(kernel, scale * flax_dense, rtol=1e-6)


def test_an_epoch_of_passes_trains_as_that_many_epochs(tmp_path):
  # Pass q of the run draws its order from (data key, q) either way, and the
  # schedule counts steps: the same steps on the same batches.
  epochs = train.train_and_evaluate(
      small_config(num_epochs=3, lr_schedule='constant'), str(tmp_path / 'a')
  )
  passes = train.train_and_evaluate(
      small_config(num_epochs=1, epoch_passes=3, lr_schedule='constant'),
      str(tmp_path / 'b'),
  )
  assert passes['steps'] == epochs['steps'] == 3 * 40
  for a, b in zip(
      jax.tree.leaves(run_state.load_checkpoint(tmp_path / 'a')[1].params),
      jax.tree.leaves(run_state.load_checkpoint(tmp_path / 'b')[1].params),
  ):
    np.testing.assert_array_equal(a, b)
  assert passes['final_test_loss'] == epochs['final_test_loss']
