"""The analysis parts of the theory settings: linear stability ('stability':
the sharpness a and the non-uniformity s of exact per-example Hessians,
against per-example Hessians derived by hand for the diagonal linear
network), the diagonal network's sparse recovery ('sparse_recovery') and
the function a network of one input learned ('function_1d', against its
forward pass in NumPy), and parts measured along training
(analysis.training_parts)."""

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from analysis import settings as analysis_settings
from analysis import stability
from analysis.training import training_evaluators
import analyze
from configs import default
from configs import maennel_1d_relu
from configuration import config_util
from configuration import validate
from input_pipeline import sources
from input_pipeline import synthetic
from runs import run_state
from tests.conftest import small_config
from tests.test_regression import diagonal_config
import train


def hand_hessians(u, v, x, y):
  """Each example's Hessian of (x . (u * v) - y)^2 / 2 over (u, v), by
  hand: with r the residual, d2/du2 = (x v)(x v)^T, d2/dv2 = (x u)(x u)^T
  and d2/dudv = (x v)(x u)^T + r diag(x)."""
  hessians = []
  for xi, yi in zip(x, y):
    r = xi @ (u * v) - yi
    xv, xu = xi * v, xi * u
    cross = np.outer(xv, xu) + r * np.diag(xi)
    hessians.append(
        np.block([[np.outer(xv, xv), cross], [cross.T, np.outer(xu, xu)]])
    )
  return np.array(hessians)


@pytest.fixture(scope='module')
def diagonal_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('diagonal')
  config = diagonal_config()
  train.train_and_evaluate(config, str(workdir))
  return workdir, config


def test_a_and_s_are_those_of_the_hand_derived_hessians(diagonal_run):
  workdir, config = diagonal_run
  state = run_state.load_checkpoint(workdir)[1]
  rng = np.random.default_rng(1)
  u, v = rng.standard_normal((2, config.input_dim))
  state = state.replace(
      params={'u': u.astype(np.float32), 'v': v.astype(np.float32)}
  )
  split = sources.load_split(config, train=True)
  x, y = split.images.astype(float), split.labels.astype(float)
  mean, squares = stability.hessian_moments(
      state, split.images, split.labels, sources.dataset_spec(config)
  )
  hessians = hand_hessians(u, v, x, y)
  np.testing.assert_allclose(mean, hessians.mean(0), rtol=1e-4, atol=1e-5)
  measured = stability.linear_stability(mean, squares)
  h = hessians.mean(0)
  spread = np.mean([hi @ hi for hi in hessians], 0) - h @ h
  assert measured['sharpness_a'] == pytest.approx(
      np.linalg.eigvalsh(h)[-1], rel=1e-4
  )
  assert measured['non_uniformity_s'] == pytest.approx(
      np.sqrt(np.linalg.eigvalsh(spread)[-1]), rel=1e-4
  )
  assert measured['trace'] == pytest.approx(np.trace(h), rel=1e-4)


def analysis_overrides(**settings):
  flag_config = default.get_config()
  flag_config.analysis.update(settings)
  return flag_config, {f'analysis.{k}': v for k, v in settings.items()}


def test_analyze_measures_and_logs_the_stability_of_a_run(diagonal_run):
  workdir, config = diagonal_run
  settings = dict(
      parts=('stability', 'hessian'),
      num_examples=8,
      batch_size=8,
      m=0,
      lanczos_iterations=30,
      top_k=1,
      slq_probes=0,
  )
  [results] = analyze.run(
      str(workdir),
      analyze.analysis_config(str(workdir), *analysis_overrides(**settings)),
  )
  measured = results['stability']
  assert measured['num_examples'] == 8
  assert measured['num_params'] == 2 * config.input_dim
  # At the run's minimum: H is PSD up to the residuals' terms, and both
  # measures are finite and positive.
  assert measured['sharpness_a'] > 0 and measured['non_uniformity_s'] > 0
  assert len(measured['eigenvalues']) == 2 * config.input_dim
  # Lanczos on Hessian-vector products finds the same top eigenvalue.
  assert measured['sharpness_a'] == pytest.approx(
      results['hessian']['top_eigenvalues'][0], rel=1e-3
  )
  # TensorBoard: the run's analysis scalars, at its last step.
  events = event_accumulator.EventAccumulator(str(workdir / 'analysis'))
  events.Reload()
  for tag, key in (
      ('stability/sharpness_a', 'sharpness_a'),
      ('stability/non_uniformity_s', 'non_uniformity_s'),
  ):
    [event] = events.Scalars(tag)
    assert event.step == results['step']
    assert event.value == pytest.approx(measured[key], rel=1e-6)


def test_sparse_recovery_is_the_distance_to_theta_star(diagonal_run):
  workdir, config = diagonal_run
  settings = dict(parts=('sparse_recovery',), num_examples=8, batch_size=8, m=0)
  [results] = analyze.run(
      str(workdir),
      analyze.analysis_config(str(workdir), *analysis_overrides(**settings)),
  )
  params = run_state.load_checkpoint(workdir)[1].params
  beta = np.asarray(params['u'], float) * np.asarray(params['v'], float)
  theta = synthetic.sparse_regression(
      8, config.input_dim, config.num_nonzero, 0.0, 50, seed=config.seed
  )['theta']
  assert results['sparse_recovery'] == pytest.approx(
      {
          'beta_l1': np.abs(beta).sum(),
          'theta_l1': np.abs(theta).sum(),
          'beta_error_l2': np.linalg.norm(beta - theta),
      },
      rel=1e-6,
  )


@pytest.fixture(scope='module')
def mlp_run(tmp_path_factory):
  """A one-epoch MLP run: 2,010 parameters, on MNIST-1D."""
  workdir = tmp_path_factory.mktemp('mlp')
  train.train_and_evaluate(small_config(num_epochs=1), str(workdir))
  return workdir


@pytest.mark.parametrize(
    'part,message',
    [
        ('stability', 'too large for'),
        ('sparse_recovery', 'not mlp on mnist1d'),
        ('function_1d', 'not mnist1d'),
    ],
)
def test_parts_for_other_models_are_refused_in_one_line(mlp_run, part, message):
  settings = dict(parts=(part,), m=0)
  with pytest.raises(config_util.ConfigError, match=message) as error:
    analyze.run(
        str(mlp_run),
        analyze.analysis_config(str(mlp_run), *analysis_overrides(**settings)),
    )
  assert '\n' not in str(error.value)


def test_the_learned_function_is_the_networks_forward_pass(tmp_path):
  # Maennel's 12 points, 7 neurons, 200 GD steps.
  config = maennel_1d_relu.get_config()
  config.update(
      num_neurons=(7,), num_epochs=1, epoch_passes=200, steps_per_dispatch=200
  )
  train.train_and_evaluate(config, str(tmp_path))
  settings = dict(parts=('function_1d',), num_examples=12, batch_size=12, m=0)
  analyze.run(
      str(tmp_path),
      analyze.analysis_config(str(tmp_path), *analysis_overrides(**settings)),
  )
  arrays = np.load(tmp_path / 'analysis' / 'function_1d.npz')
  params = run_state.load_checkpoint(tmp_path)[1].params
  hidden, output = params['Dense_0'], params['Dense_1']
  x = arrays['x'].astype(np.float64)
  expected = np.maximum(
      x[:, None] * np.asarray(hidden['kernel'], np.float64)
      + np.asarray(hidden['bias'], np.float64),
      0,
  ) @ np.asarray(output['kernel'], np.float64)
  np.testing.assert_allclose(
      arrays['prediction'], expected[:, 0], rtol=1e-4, atol=1e-4
  )
  data = synthetic.maennel_1d()
  np.testing.assert_allclose(arrays['train_x'], data['x'].reshape(-1))
  np.testing.assert_allclose(arrays['train_y'], data['y'].reshape(-1))
  # The grid covers the points with a tenth of their range each side.
  span = data['x'].max() - data['x'].min()
  assert arrays['x'][0] == pytest.approx(data['x'].min() - span / 10)
  assert arrays['x'][-1] == pytest.approx(data['x'].max() + span / 10)
  assert (tmp_path / 'analysis' / 'function_1d.png').exists()


def test_training_logs_the_training_parts_scalars(tmp_path):
  # ||beta||_1 along training: analysis.training_parts with
  # analysis_every_epochs, checked at the end against the final weights.
  config = diagonal_config(num_epochs=2, analysis_every_epochs=1)
  config.analysis.update(
      training_parts=('sparse_recovery',), num_examples=8, batch_size=8, m=0
  )
  summary = train.train_and_evaluate(
      config, str(tmp_path), evaluators=training_evaluators(config)
  )
  params = run_state.load_checkpoint(tmp_path)[1].params
  beta = np.asarray(params['u'], np.float64) * np.asarray(params['v'])
  first, last = summary['history']
  assert last['recovery/beta_l1'] == pytest.approx(np.abs(beta).sum(), 1e-5)
  assert first['recovery/beta_l1'] != last['recovery/beta_l1']
  # The Hessian's training scalars are still there.
  assert 'hessian/top_eigenvalue' in last


@pytest.mark.parametrize(
    'training_parts,every,message',
    [
        (('nosuch',), 1, 'parts that log scalars'),
        # The landscape logs no scalars: measuring it would be lost work.
        (('landscape',), 1, 'parts that log scalars'),
        (('sparse_recovery',), 0, 'set analysis_every_epochs > 0'),
    ],
)
def test_bad_training_parts_are_refused_before_training(
    training_parts, every, message
):
  config = diagonal_config(analysis_every_epochs=every)
  config.analysis.training_parts = training_parts
  with pytest.raises(config_util.ConfigError, match=message) as error:
    validate.check_config(config)
    analysis_settings.check_training(config)
  assert '\n' not in str(error.value)


def test_a_part_that_cannot_measure_the_run_is_refused_before_training(
    tmp_path,
):
  config = small_config(analysis_every_epochs=1)
  config.analysis.training_parts = ('sparse_recovery',)
  with pytest.raises(config_util.ConfigError, match='not mlp on mnist1d'):
    train.train_and_evaluate(
        config, str(tmp_path), evaluators=training_evaluators(config)
    )
  assert not tmp_path.exists() or not any(tmp_path.iterdir())
