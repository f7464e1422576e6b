"""SAM's variants in training: limits that must reproduce known runs."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configuration import config_util
import models
import optimizers
from runs import run_state
from runtime import parallel
from tests.conftest import small_config
import train
import train_step


def final_state(workdir):
  return run_state.load_checkpoint(workdir)[1]


def assert_close_params(a, b, **tolerance):
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tolerance)


def run(tmp_path, name, **overrides):
  config = small_config(num_train_examples=2000, num_epochs=2)
  config.update(overrides)
  summary = train.train_and_evaluate(config, str(tmp_path / name))
  return summary, final_state(tmp_path / name)


def fine_tune_frozen(tmp_path, source):
  """The state after one epoch of SAM from `source` at a learning rate too
  small to move any weight."""
  _, tuned = run(
      tmp_path,
      'tuned',
      optimizer='sam',
      num_epochs=1,
      learning_rate=1e-30,
      weight_decay=0.0,
      init_from=str(source),
  )
  return tuned


@pytest.mark.slow
def test_sam_with_vanishing_rho_reproduces_sgd(tmp_path):
  _, sgd = run(tmp_path, 'sgd', optimizer='sgd')
  _, sam = run(tmp_path, 'sam', optimizer='sam', rho=1e-8)
  assert_close_params(sgd, sam, rtol=1e-4, atol=1e-6)
  _, sam_far = run(tmp_path, 'sam_far', optimizer='sam', rho=0.5)
  with pytest.raises(AssertionError):
    assert_close_params(sgd, sam_far, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_sam_m_equal_to_the_device_batch_reproduces_the_default(tmp_path):
  # One device: the device batch is the whole batch of 100.
  _, default = run(tmp_path, 'default', optimizer='sam')
  _, whole = run(tmp_path, 'whole', optimizer='sam', sam_m=100)
  assert_close_params(default, whole, rtol=1e-5, atol=1e-6)
  _, quarters = run(tmp_path, 'quarters', optimizer='sam', sam_m=25)
  with pytest.raises(AssertionError):
    assert_close_params(default, quarters, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_sam_start_epoch_switches_from_sgd_to_sam(tmp_path):
  sgd, _ = run(tmp_path, 'sgd', optimizer='sgd', num_epochs=3)
  late, _ = run(
      tmp_path, 'late', optimizer='sam', sam_start_epoch=2, num_epochs=3
  )
  assert [h['sam'] for h in late['history']] == [False, False, True]
  for a, b in zip(sgd['history'][:2], late['history'][:2]):
    assert a['train_loss'] == b['train_loss']
    assert a['test_accuracy'] == b['test_accuracy']
  assert late['history'][2]['train_loss'] != sgd['history'][2]['train_loss']


@pytest.mark.slow
def test_init_from_starts_from_another_runs_final_weights(tmp_path):
  _, source = run(
      tmp_path, 'sgd', optimizer='sgd', sparsity=0.5, pruner='magnitude'
  )
  # A learning rate too small to move any weight: the fine-tuned run ends
  # where the source run ended, with its mask.
  tuned = fine_tune_frozen(tmp_path, tmp_path / 'sgd')
  assert_close_params(source, tuned, rtol=0, atol=0)
  for a, b in zip(jax.tree.leaves(source.mask), jax.tree.leaves(tuned.mask)):
    np.testing.assert_array_equal(a, b)
  assert int(tuned.step) == 20  # Its own steps, counted from 0.
  with pytest.raises(config_util.ConfigError, match='holds a different model'):
    run(
        tmp_path, 'wider', num_neurons=(64, 16), init_from=str(tmp_path / 'sgd')
    )


def test_fine_tuning_starts_from_the_replica_it_names(tmp_path):
  replicas, _ = run(
      tmp_path, 'replicas', optimizer='sgd', num_epochs=1, num_replicas=3
  )
  source = tmp_path / 'replicas'
  # The whole run of three: which replica is meant? Refused, in one line.
  with pytest.raises(
      config_util.ConfigError,
      match=re.escape(
          f'init_from={source} holds 3 replicas trained side by side; start '
          f'from one of them: init_from={source}/replica_<r>, r from 0 to 2'
      ),
  ):
    run(tmp_path, 'whole', optimizer='sam', num_epochs=1, init_from=str(source))
  with pytest.raises(config_util.ConfigError, match='has 3 replicas'):
    run(
        tmp_path,
        'fourth',
        optimizer='sam',
        num_epochs=1,
        init_from=str(source / 'replica_3'),
    )
  # Replica 1, at a learning rate too small to move a weight: the fine-tune
  # ends where replica 1 ended.
  tuned = fine_tune_frozen(tmp_path, source / 'replica_1')
  assert replicas['num_replicas'] == 3
  assert_close_params(
      parallel.replica(final_state(source), 1), tuned, rtol=0, atol=0
  )


@pytest.mark.parametrize(
    'variant',
    [
        {'sam_steps': 3},
        {'sam_adaptive': True, 'rho': 0.5},
        {'sam_weight_decay_in_ascent': True, 'weight_decay': 1e-2},
        {'base_optimizer': 'adamw', 'learning_rate': 1e-2},
    ],
)
def test_sam_variants_train(tmp_path, variant):
  summary, _ = run(tmp_path, 'run', optimizer='sam', num_epochs=2, **variant)
  losses = [h['train_loss'] for h in summary['history']]
  assert losses[1] < losses[0]
  assert summary['final_test_accuracy'] > 0.2  # Chance is 0.1.


@pytest.mark.slow
def test_batchnorm_statistics_come_from_the_chosen_pass():
  config = small_config(
      dataset='fashion_mnist',
      model='resnet18',
      num_filters=2,
      optimizer='sam',
      rho=0.5,
  )
  model = models.create_model(config, 10)
  state = run_state.create_train_state(
      model,
      (8, 8, 1),
      jax.random.key(0),
      optimizers.create_optimizer(config, lambda step: 0.1),
  )
  images = jax.random.normal(jax.random.key(1), (16, 8, 8, 1))
  labels = jnp.arange(16) % 10

  def step(choice):
    config.sam_batchnorm_stats = choice
    return jax.jit(
        lambda s: train_step.sam_step_gradient(
            s, images, labels, config, 0.5, 0.1
        )
    )(state)

  clean_grads, (_, _, clean_stats), _ = step('clean')
  perturbed_grads, (_, _, perturbed_stats), _ = step('perturbed')
  # The descent gradient does not depend on the choice.
  for a, b in zip(
      jax.tree.leaves(clean_grads), jax.tree.leaves(perturbed_grads)
  ):
    np.testing.assert_array_equal(a, b)
  # Clean statistics are those of a forward pass at the unperturbed weights.
  _, (_, _, expected) = run_state.loss_gradient(
      state, images, labels, state.params
  )
  for a, b in zip(jax.tree.leaves(clean_stats), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  assert any(
      not np.allclose(a, b)
      for a, b in zip(
          jax.tree.leaves(clean_stats), jax.tree.leaves(perturbed_stats)
      )
  )
