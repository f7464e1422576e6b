"""Base optimizers and learning-rate schedules against their formulas."""

import jax.numpy as jnp
import numpy as np
import pytest

import optimizers
from tests.conftest import small_config


def test_step_schedule_decays_at_fractions_of_training():
  config = small_config(
      num_epochs=10, learning_rate=0.1, lr_boundaries=(0.25, 0.5, 0.75)
  )
  schedule = optimizers.create_learning_rate_schedule(config, 20)
  # 200 steps: boundaries at steps 50, 100, 150.
  lrs = [float(schedule(s)) for s in (0, 49, 50, 99, 100, 150, 199)]
  np.testing.assert_allclose(
      lrs, [0.1, 0.1, 0.01, 0.01, 1e-3, 1e-4, 1e-4], rtol=1e-6
  )


def test_cosine_schedule_warms_up_linearly_then_decays_to_zero():
  config = small_config(
      num_epochs=10, learning_rate=0.4, lr_schedule='cosine', warmup_epochs=1
  )
  schedule = optimizers.create_learning_rate_schedule(config, 10)
  # 100 steps, 10 of warmup, then 0.4 * (1 + cos(pi t / 90)) / 2.
  assert float(schedule(0)) == 0
  assert float(schedule(5)) == pytest.approx(0.2)
  for step in (10, 40, 55, 100):
    expected = 0.2 * (1 + np.cos(np.pi * (step - 10) / 90))
    assert float(schedule(step)) == pytest.approx(expected, abs=1e-7)


def test_warmup_ramps_the_step_schedule():
  config = small_config(
      num_epochs=10, learning_rate=0.1, warmup_epochs=0.5, lr_boundaries=(0.5,)
  )
  schedule = optimizers.create_learning_rate_schedule(config, 20)
  np.testing.assert_allclose(
      [float(schedule(s)) for s in (0, 4, 9, 10, 99, 100)],
      [0.01, 0.05, 0.1, 0.1, 0.1, 0.01],
      rtol=1e-6,
  )


def two_steps(base_optimizer, **keys):
  config = small_config(base_optimizer=base_optimizer, **keys)
  tx = optimizers.create_optimizer(config, lambda step: 0.5)
  w = jnp.array([1.0, -2.0])
  state = tx.init(w)
  updates, state = tx.update(G1, state, w)
  w1 = w + updates
  updates, state = tx.update(G2, state, w1)
  return w, w1, w1 + updates


G1, G2 = jnp.array([0.3, 0.1]), jnp.array([-0.2, 0.4])


@pytest.mark.parametrize('nesterov', [False, True])
def test_sgd_follows_pytorch_sgd_with_coupled_weight_decay(nesterov):
  w, w1, w2 = two_steps(
      'nesterov' if nesterov else 'sgd', momentum=0.9, weight_decay=0.1
  )
  # PyTorch: d = g + wd w; m = 0.9 m + d; step = d + 0.9 m (Nesterov) or m.
  m, expected = 0, [w]
  for g in (G1, G2):
    d = g + 0.1 * expected[-1]
    m = 0.9 * m + d
    expected.append(expected[-1] - 0.5 * (d + 0.9 * m if nesterov else m))
  np.testing.assert_allclose(w1, expected[1], rtol=1e-6)
  np.testing.assert_allclose(w2, expected[2], rtol=1e-6)


@pytest.mark.parametrize('decoupled', [False, True])
def test_adam_and_adamw_apply_weight_decay_as_documented(decoupled):
  w, w1, w2 = two_steps(
      'adamw' if decoupled else 'adam',
      weight_decay=0.1,
      adam_b1=0.9,
      adam_b2=0.99,
      adam_eps=1e-8,
  )
  m = v = 0
  expected = [w]
  for t, g in enumerate((G1, G2), start=1):
    if not decoupled:
      g = g + 0.1 * expected[-1]
    m = 0.9 * m + 0.1 * g
    v = 0.99 * v + 0.01 * g**2
    step = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-8)
    if decoupled:
      step = step + 0.1 * expected[-1]
    expected.append(expected[-1] - 0.5 * step)
  np.testing.assert_allclose(w1, expected[1], rtol=1e-5)
  np.testing.assert_allclose(w2, expected[2], rtol=1e-5)
