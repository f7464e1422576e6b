"""Pruning masks: exact counts, the right weights, and zeros that stay zero."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import evaluation
from input_pipeline import on_device
from input_pipeline import sources
import models
from runs import run_state
from runtime import parallel
import sparsity
from tests.conftest import small_config
import train


def params_tree(seed=0):
  rng = np.random.default_rng(seed)
  return {
      'Dense_0': {
          'kernel': jnp.asarray(rng.standard_normal((20, 30))),
          'bias': jnp.asarray(rng.standard_normal(30)),
      },
      'Dense_1': {
          'kernel': jnp.asarray(3 * rng.standard_normal((30, 10))),
          'bias': jnp.asarray(rng.standard_normal(10)),
      },
      'BatchNorm_0': {'scale': jnp.ones(10), 'bias': jnp.zeros(10)},
  }


def pruned_fraction(mask, layer):
  return 1 - np.mean(mask[layer]['kernel'])


def assert_only_kernels_pruned(mask):
  for path, m in jax.tree_util.tree_leaves_with_path(mask):
    if not sparsity.is_kernel(path):
      assert np.all(m), path


@pytest.mark.parametrize('s', [0.1, 0.5, 0.9, 0.987])
def test_random_prunes_the_same_fraction_of_every_layer(s):
  mask = sparsity.compute_mask('random', s, params_tree(), jax.random.key(1))
  for layer, n in (('Dense_0', 600), ('Dense_1', 300)):
    assert np.sum(~mask[layer]['kernel']) == round(s * n)
  assert_only_kernels_pruned(mask)


def test_random_masks_depend_on_the_key_only():
  a = sparsity.compute_mask('random', 0.5, params_tree(0), jax.random.key(1))
  b = sparsity.compute_mask('random', 0.5, params_tree(1), jax.random.key(1))
  c = sparsity.compute_mask('random', 0.5, params_tree(0), jax.random.key(2))
  assert all(
      np.array_equal(x, y)
      for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )
  assert not np.array_equal(a['Dense_0']['kernel'], c['Dense_0']['kernel'])


def test_magnitude_prunes_the_globally_smallest_weights():
  params = params_tree()
  mask = sparsity.compute_mask('magnitude', 0.6, params, jax.random.key(0))
  kernels = [np.abs(params[l]['kernel']) for l in ('Dense_0', 'Dense_1')]
  masks = [mask[l]['kernel'] for l in ('Dense_0', 'Dense_1')]
  kept = np.concatenate([k[m] for k, m in zip(kernels, masks)])
  pruned = np.concatenate([k[~m] for k, m in zip(kernels, masks)])
  assert len(pruned) == round(0.6 * 900)
  assert pruned.max() <= kept.min()
  # Global, not layer-wise: the larger-scale layer keeps more of its weights.
  assert pruned_fraction(mask, 'Dense_1') < pruned_fraction(mask, 'Dense_0')
  assert_only_kernels_pruned(mask)


def test_snip_prunes_the_smallest_connection_sensitivities():
  params = params_tree()
  grads = jax.tree.map(lambda p: jnp.cos(3 * p), params)  # Any gradient.
  mask = sparsity.compute_mask('snip', 0.3, params, jax.random.key(0), grads)
  scores = {
      l: np.abs(params[l]['kernel'] * grads[l]['kernel'])
      for l in ('Dense_0', 'Dense_1')
  }
  kept = np.concatenate([scores[l][mask[l]['kernel']] for l in scores])
  pruned = np.concatenate([scores[l][~mask[l]['kernel']] for l in scores])
  assert len(pruned) == round(0.3 * 900)
  assert pruned.max() <= kept.min()


def test_a_vits_kernels_are_its_projections_not_its_embeddings():
  config = small_config(
      model='vit',
      dataset='fashion_mnist',
      hidden_size=16,
      depth=1,
      patch_size=7,
  )
  module = models.create_model(config, 10)
  params = module.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))['params']
  mask = sparsity.compute_mask('random', 0.5, params, jax.random.key(1))
  pruned = {
      '/'.join(str(getattr(k, 'key', k)) for k in path)
      for path, keep in jax.tree_util.tree_leaves_with_path(mask)
      if not np.all(keep)
  }
  attention = 'Encoder_0/EncoderBlock_0/MultiHeadDotProductAttention_0'
  assert pruned == {
      'embedding/kernel',
      'head/kernel',
      *(f'{attention}/{p}/kernel' for p in ('query', 'key', 'value', 'out')),
      'Encoder_0/EncoderBlock_0/Dense_0/kernel',
      'Encoder_0/EncoderBlock_0/Dense_1/kernel',
  }


def test_sparsity_zero_prunes_nothing():
  for pruner in sparsity.PRUNERS:
    assert (
        sparsity.compute_mask(pruner, 0.0, params_tree(), jax.random.key(0))
        is None
    )
  params = params_tree()
  assert sparsity.apply_mask(params, None) is params


def test_kernel_sparsity_counts_zero_kernel_entries_only():
  params = params_tree()
  mask = sparsity.compute_mask('random', 0.25, params, jax.random.key(3))
  masked = sparsity.apply_mask(params, mask)
  masked['BatchNorm_0']['bias'] = jnp.zeros(10)  # Not a kernel: not counted.
  assert float(sparsity.kernel_sparsity(masked)) == pytest.approx(0.25)


@pytest.mark.parametrize(
    'pruner,optimizer,base_optimizer,buffer',
    [
        ('snip', 'sam', 'sgd', 'trace'),
        ('magnitude', 'sgd', 'sgd', 'trace'),
        ('random', 'sam', 'adamw', 'mu'),
    ],
)
def test_pruned_weights_stay_exactly_zero_through_training(
    tmp_path, pruner, optimizer, base_optimizer, buffer
):
  config = small_config(
      pruner=pruner,
      sparsity=0.7,
      optimizer=optimizer,
      base_optimizer=base_optimizer,
      weight_decay=1e-2,
      momentum=0.9,
      num_epochs=2,
  )
  if base_optimizer == 'adamw':
    config.learning_rate = 1e-2
  summary = train.train_and_evaluate(config, str(tmp_path))
  _, state, _ = run_state.load_checkpoint(tmp_path)
  momentum = optax.tree_utils.tree_get(state.opt_state, buffer)
  kernels = [
      (path, p, m, v)
      for (path, p), m, v in zip(
          jax.tree_util.tree_leaves_with_path(state.params),
          jax.tree.leaves(state.mask),
          jax.tree.leaves(momentum),
      )
      if sparsity.is_kernel(path)
  ]
  assert len(kernels) == 3
  for path, p, m, v in kernels:
    p, m, v = np.asarray(p), np.asarray(m), np.asarray(v)
    assert 0 < np.mean(m) < 1, path
    assert np.all(p[~m] == 0), path
    assert np.all(v[~m] == 0), path  # Momentum never moves them either.
    assert np.all(p[m] != 0), path  # The kept weights did train.
    assert np.any(v[m] != 0), path
  for history in summary['history']:
    assert history['sparsity'] == pytest.approx(0.7, abs=1e-3)


def test_evaluation_applies_the_mask(tmp_path):
  config = small_config(sparsity=0.5, num_epochs=1)
  train.train_and_evaluate(config, str(tmp_path))
  _, state, _ = run_state.load_checkpoint(tmp_path)
  mesh = parallel.create_mesh()
  evaluate = evaluation.make_evaluate(sources.dataset_spec(config), mesh)
  data = on_device.OnDeviceEvalData(
      sources.load_split(config, train=False), config, mesh
  )
  inputs = next(data.groups())
  clean, _, _ = evaluate(state, inputs)
  # Weights that are pruned but non-zero must not change the predictions.
  noisy = state.replace(
      params=jax.tree.map(
          lambda p, m: jnp.where(m, p, 5.0), state.params, state.mask
      )
  )
  corrupted, _, _ = evaluate(noisy, inputs)
  assert float(clean['loss']) == float(corrupted['loss'])
  dense = state.replace(params=noisy.params, mask=None)
  assert float(evaluate(dense, inputs)[0]['loss']) != float(clean['loss'])
