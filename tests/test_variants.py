"""What every SAM variant gets from the training loop: it trains through
train_and_evaluate, a stopped run resumes exactly (its state in the
checkpoint), replicas equal separate runs, m-sharpness is refused where a
variant keeps state; and the knobs every variant shares: rho following the
learning rate, the variant on every k-th step only."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configuration import config_util
from configuration import validate
import models
import optimizers
from runs import run_state
from runtime import parallel
import sam
from tests.conftest import small_config
from tests.test_replicas import assert_replicas_are_runs
from tests.test_train import final_params
from tests.test_train import stop_after
from tests.test_train import without_timing
import train
import train_step

STATEFUL = sorted(name for name, v in sam.VARIANTS.items() if v.init)
# What a variant needs of the small MLP run: SAM-ON, normalization layers
# (a LayerNorm ViT on MNIST-1D's 40 features read as tokens is not
# possible, so a tiny ResNet); MESA, its distillation within two epochs.
NEEDS = {
    'sam_on': dict(
        dataset='fashion_mnist',
        model='resnet18',
        num_filters=2,
        num_train_examples=500,
        batch_size=50,
    ),
    'mesa': dict(sam_mesa_start_epoch=1, sam_mesa_decay=0.9),
}


def variant_config(name, **overrides):
  config = small_config(
      optimizer='sam', sam_variant=name, num_train_examples=2000
  )
  config.update(NEEDS.get(name, {}))
  config.update(overrides)
  return config


@pytest.mark.parametrize('name', sorted(sam.VARIANTS))
def test_every_variant_trains(tmp_path, name):
  summary = train.train_and_evaluate(
      variant_config(name, num_epochs=2), str(tmp_path)
  )
  losses = [h['train_loss'] for h in summary['history']]
  assert losses[1] < losses[0]
  assert summary['final_test_accuracy'] > 0.2  # Chance is 0.1.


@pytest.mark.parametrize('name', STATEFUL)
def test_a_stopped_run_of_a_stateful_variant_resumes_exactly(tmp_path, name):
  config = variant_config(name, num_epochs=2)
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  # 20 steps per epoch in dispatches of 7: the 4th poll is inside epoch 2.
  with pytest.raises(train.Stopped):
    train.train_and_evaluate(
        config, str(tmp_path / 'resumed'), should_stop=stop_after(4)
    )
  resumed = train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  assert without_timing(resumed) == without_timing(straight)
  # final_params holds the variant's state too.
  for a, b in zip(
      final_params(tmp_path / 'straight'), final_params(tmp_path / 'resumed')
  ):
    np.testing.assert_array_equal(a, b)
  _, state, _ = run_state.load_checkpoint(tmp_path / 'resumed')
  assert jax.tree.leaves(state.sam_state)


@pytest.mark.slow
def test_replicas_of_a_stateful_variant_equal_separate_runs(tmp_path):
  def train_run(name, **overrides):
    config = variant_config('vasso', num_epochs=2, **overrides)
    return train.train_and_evaluate(config, str(tmp_path / name))

  # vmap reorders float sums; two epochs of the ascent's normalization
  # amplify that to a few 1e-5 on weights of order 0.1.
  assert_replicas_are_runs(tmp_path, train_run, seed=3, atol=1e-4)


@pytest.mark.parametrize('name', STATEFUL)
def test_m_sharpness_is_refused_for_a_variant_with_state(name):
  with pytest.raises(config_util.ConfigError, match='keeps state'):
    validate.check_config(variant_config(name, sam_m=10))


def test_rho_follows_the_learning_rate_when_asked():
  config = small_config(
      optimizer='sam',
      learning_rate=0.4,
      sam_rho_schedule='learning_rate',
      sam_rho_min=0.02,
  )
  # GSAM's rho_t = rho_min + (rho - rho_min) * lr_t / lr.
  assert float(sam.scheduled_rho(config, 0.2, 0.1)) == pytest.approx(
      0.02 + 0.18 / 4
  )
  assert sam.scheduled_rho(small_config(), 0.2, 0.1) == 0.2
  with pytest.raises(config_util.ConfigError, match='sam_rho_min'):
    validate.check_config(small_config(optimizer='sam', sam_rho_min=0.01))


def _one_step(config, use_sam):
  """A jitted train_step on a fixed batch of the small MLP."""
  batch = {
      'images': jax.random.normal(jax.random.key(1), (32, 40)),
      'labels': jnp.arange(32) % 10,
  }
  return parallel.jit_shard(
      lambda state: train_step.train_step(
          state,
          batch,
          config=config,
          use_sam=use_sam,
          rho=config.rho,
          schedule=lambda step: 0.1,
      ),
      parallel.create_mesh(),
      (parallel.REPLICATED,),
      (parallel.REPLICATED, parallel.REPLICATED),
  )


def test_sam_every_k_steps_alternates_with_plain_steps():
  config = small_config(optimizer='sam', rho=0.5, sam_every_steps=3)
  model = models.create_model(config, 10)
  state = run_state.create_train_state(
      model,
      (40,),
      jax.random.key(0),
      optimizers.create_optimizer(config, lambda step: 0.1),
  )
  every_third, sam_step, plain_step = (
      _one_step(config, True),
      _one_step(small_config(optimizer='sam', rho=0.5), True),
      _one_step(config, False),
  )
  mixed = alternating = state
  for step in range(6):
    mixed, _ = every_third(mixed)
    alternating, _ = (sam_step if step % 3 == 0 else plain_step)(alternating)
  for a, b in zip(
      jax.tree.leaves(mixed.params), jax.tree.leaves(alternating.params)
  ):
    np.testing.assert_array_equal(a, b)
  # And SAM's steps did something: six plain steps end elsewhere.
  plain = state
  for _ in range(6):
    plain, _ = plain_step(plain)
  assert not np.allclose(
      jax.tree.leaves(plain.params)[0], jax.tree.leaves(mixed.params)[0]
  )


@pytest.mark.parametrize(
    'overrides,message',
    [
        (dict(sam_rho_schedule='cosine'), 'sam_rho_schedule must be one of'),
        (dict(sam_every_steps=0), 'sam_every_steps must be >= 1, got 0'),
        (
            dict(sam_variant='mesa', sam_mesa_start_epoch=3),
            'the distillation term would never be used',
        ),
        (dict(sam_variant='vasso', sam_vasso_theta=0.0), 'sam_vasso_theta'),
        (
            dict(sam_variant='gsam', sam_vasso_theta=0.5),
            'sam_vasso_theta=0.5 is read by sam_variant=vasso, not gsam',
        ),
    ],
)
def test_bad_shared_and_variant_keys_are_refused_in_one_line(
    overrides, message
):
  with pytest.raises(config_util.ConfigError, match=re.escape(message)):
    validate.check_config(small_config(optimizer='sam', **overrides))
