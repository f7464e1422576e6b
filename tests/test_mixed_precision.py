"""dtype='bfloat16': the passes run in bfloat16 while the parameters, the
gradients SAM normalizes and the states stay float32; the gradient and a
SAM run agree with float32 within bfloat16's precision."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from analysis import measure
from configuration import config_util
from configuration import validate
import models
import optimizers
from runs import run_state
from runtime import parallel
from tests.conftest import small_config
import train


def state_in(dtype, config):
  return run_state.create_train_state(
      models.create_model(config, 10),
      (40,),
      jax.random.key(0),
      optimizers.create_optimizer(config, lambda step: 0.1),
      compute_dtype=dtype,
  )


def test_bfloat16_gradients_are_float32_and_close_to_float32_ones():
  config = small_config(num_neurons=(256, 128))
  images = jax.random.normal(jax.random.key(1), (64, 40))
  labels = jnp.arange(64) % 10
  grads = {}
  for dtype in ('float32', 'bfloat16'):
    state = state_in(dtype, config)
    grads[dtype], (losses, logits, _) = jax.jit(
        lambda s: run_state.loss_gradient(s, images, labels, s.params)
    )(state)
    assert logits.dtype == losses.dtype == jnp.float32
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads['bfloat16']))
  full, half = (
      np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads[d])])
      for d in ('float32', 'bfloat16')
  )
  # bfloat16 keeps 8 bits of mantissa (2^-8 per rounding); through three
  # layers forward and back, XLA:CPU's bfloat16 sums give a relative error
  # of 4.7% here, in the direction mostly: the cosine is 0.9989.
  assert np.linalg.norm(half - full) / np.linalg.norm(full) < 0.08
  assert half @ full / np.linalg.norm(half) / np.linalg.norm(full) > 0.995
  assert float(optax.global_norm(grads['bfloat16'])) > 0


@pytest.mark.slow
def test_a_bfloat16_sam_run_follows_the_float32_one(tmp_path):
  summaries = {
      dtype: train.train_and_evaluate(
          small_config(optimizer='sam', dtype=dtype, num_epochs=3),
          str(tmp_path / dtype),
      )
      for dtype in ('float32', 'bfloat16')
  }
  full, half = summaries['float32'], summaries['bfloat16']
  for a, b in zip(full['history'], half['history']):
    assert b['train_loss'] == pytest.approx(a['train_loss'], rel=0.03)
  assert abs(full['final_test_accuracy'] - half['final_test_accuracy']) < 0.03
  config, state, _ = run_state.load_checkpoint(tmp_path / 'bfloat16')
  # The analysis measures in float32 whatever the run trained in.
  analyzer = measure.Analyzer(config, parallel.create_mesh())
  assert analyzer.training_scalars(state) == analyzer.training_scalars(
      state.replace(compute_dtype='float32')
  )
  assert all(
      x.dtype == jnp.float32
      for x in jax.tree.leaves((state.params, state.opt_state))
      if jnp.issubdtype(x.dtype, jnp.floating)
  )


def test_bfloat16_is_refused_for_token_ids_and_unknown_dtypes():
  with pytest.raises(config_util.ConfigError, match='round token ids'):
    validate.check_config(
        small_config(
            dataset='imdb_reviews', model='text_transformer', dtype='bfloat16'
        ),
        device_checks=False,
    )
  with pytest.raises(config_util.ConfigError, match="unknown dtype 'float16'"):
    validate.check_config(small_config(dtype='float16'), device_checks=False)
