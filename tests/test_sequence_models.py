"""The LSTM text classifier, the Transformer tagger and the time-series
Transformer, and the tagging task: the LSTM against a NumPy LSTM, parameter
counts against their formulas, padding that changes nothing, per-word
losses and metrics by hand; then training on the tiny files of
data_files.py (and made-up SST-2 sentences, tfds.testing.mock_data) and on
a TU graph set: SAM lowers the loss, replicas equal separate runs, 4
devices follow 1."""

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
import tasks
from tests import conftest
from tests import data_files
from tests.conftest import small_config
from tests.test_multidevice import assert_same_run
from tests.test_multidevice import train_with
from tests.test_replicas import assert_replicas_are_runs
import train

TOKENS = dict(vocab_size=20, max_length=10, hidden_size=8, depth=1)


def _perturbed(params, seed=1):
  """Parameters moved off their (partly zero) initial values."""
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return treedef.unflatten(
      [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
  )


def _init(model, shape):
  return _perturbed(model.init(jax.random.key(0), jnp.zeros(shape)))


def _count(params):
  return sum(x.size for x in jax.tree.leaves(params))


def _lstm(hidden_size=8):
  config = small_config(model='lstm', **dict(TOKENS, hidden_size=hidden_size))
  return models.create_model(config, num_classes=3)


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def test_lstm_follows_the_lstm_equations():
  model = _lstm()
  params = _init(model, (1, 10))
  p = jax.tree.map(np.asarray, params['params'])
  cell = p['lstm']
  sentence = [4, 7, 1, 9]
  h = c = np.zeros(8)
  for token in sentence:
    x = p['token_embedding']['embedding'][token]
    gate = {
        g: (
            x @ cell[f'i{g}']['kernel']
            + h @ cell[f'h{g}']['kernel']
            + cell[f'h{g}']['bias']
        )
        for g in 'ifgo'
    }
    c = _sigmoid(gate['f']) * c + _sigmoid(gate['i']) * np.tanh(gate['g'])
    h = _sigmoid(gate['o']) * np.tanh(c)
  expected = h @ p['head']['kernel'] + p['head']['bias']
  tokens = jnp.array([sentence + [0] * 6])
  np.testing.assert_allclose(
      model.apply(params, tokens)[0], expected, rtol=1e-4, atol=1e-5
  )


def test_lstm_parameter_count_follows_the_formula():
  h, v, classes = 8, 20, 3
  expected = v * h + 4 * (h * h + h * h + h) + h * classes + classes
  assert _count(_init(_lstm(), (1, 10))) == expected


@pytest.mark.parametrize('family', ['lstm', 'transformer_tagger'])
def test_padding_counts_for_nothing(family):
  config = small_config(model=family, **TOKENS)
  model = models.create_model(config, num_classes=3)
  params = _init(model, (1, 10))
  words = jnp.array(
      [[5, 7, 9, 3, 0, 0, 0, 0, 0, 0], [8, 1, 2, 0, 0, 0, 0, 0, 0, 0]]
  )
  padded = model.apply(params, words)
  for length in (4, 6):
    shorter = model.apply(params, words[:, :length])
    if family == 'transformer_tagger':  # A tag per word: the words' tags.
      padded_words, shorter = padded[:, :3], shorter[:, :3]
    else:
      padded_words = padded
    np.testing.assert_allclose(shorter, padded_words, rtol=1e-5, atol=1e-5)
  # A word where there was padding does change the outputs.
  other = model.apply(params, words.at[:, 5].set(4))
  assert not np.allclose(other[:, :3], padded[:, :3], atol=1e-4)


def _encoder_count(h, mlp, depth):
  block = 2 * 2 * h + 4 * (h * h + h) + h * mlp + mlp + mlp * h + h
  return depth * block + 2 * h  # The blocks, then the final LayerNorm.


def test_tagger_parameter_count_follows_the_formula():
  config = small_config(model='transformer_tagger', **TOKENS)
  params = _init(models.create_model(config, num_classes=17), (1, 10))
  h, v, length, tags = 8, 20, 10, 17
  expected = v * h + length * h + _encoder_count(h, 4 * h, 1) + h * tags + tags
  assert _count(params) == expected


@pytest.mark.parametrize('pooling', ['cls', 'mean'])
def test_series_transformer_count_and_end_padding(pooling):
  config = small_config(
      model='series_transformer',
      hidden_size=8,
      depth=1,
      patch_size=10,
      pooling=pooling,
  )
  model = models.create_model(config, num_classes=5)
  params = _init(model, (1, 187))
  h, p, tokens = 8, 10, 19  # 187 steps padded to 190: 19 patches.
  expected = (
      p * h
      + h
      + (tokens + (pooling == 'cls')) * h
      + h * (pooling == 'cls')
      + _encoder_count(h, 4 * h, 1)
      + h * 5
      + 5
  )
  assert _count(params) == expected
  beats = np.random.default_rng(0).random((2, 187)).astype(np.float32)
  zero_padded = np.pad(beats, ((0, 0), (0, 3)))
  np.testing.assert_allclose(
      model.apply(params, beats),
      model.apply(params, zero_padded),
      rtol=1e-6,
  )


def test_tagging_loss_and_accuracy_are_per_word():
  task = tasks.TASKS['tagging']
  logits = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
  pad = tasks.PAD_TAG
  labels = np.array([[1, 2, pad, pad], [0, 4, 4, 3], [pad] * 4], np.int32)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  first = [-log_p[0, j, labels[0, j]] for j in range(2)]
  second = [-log_p[1, j, labels[1, j]] for j in range(4)]
  np.testing.assert_allclose(
      task.losses(logits, labels),
      [np.mean(first), np.mean(second), 0.0],
      rtol=1e-5,
  )
  right = logits.argmax(-1) == labels
  sums = tasks.metric_sums(
      task,
      task.losses(logits, labels),
      logits,
      labels,
      jnp.array([True, True, True]),
  )
  # Per word over the batch: 6 words, whatever the sentences.
  assert int(sums['count']) == 6
  assert float(sums['accuracy']) / 6 == pytest.approx(
      (right[0, :2].sum() + right[1].sum()) / 6
  )
  assert float(sums['loss']) == pytest.approx(
      np.sum(first) + np.sum(second), rel=1e-5
  )


# Each model on its data: (overrides, what writes its files in a directory,
# how many made-up TFDS examples it reads, or 0).
SETTINGS = {
    'tagger': (
        dict(
            model='transformer_tagger',
            dataset='ud_en_ewt',
            **dict(TOKENS, hidden_size=16),
        ),
        data_files.write_treebank,
        0,
    ),
    'series': (
        dict(
            model='series_transformer',
            dataset='mitbih',
            hidden_size=16,
            depth=1,
            patch_size=11,
            pooling='mean',
        ),
        data_files.write_mitbih,
        0,
    ),
    'tu_gcn': (
        dict(model='gcn', dataset='tu/Toy', hidden_size=16, depth=2),
        functools.partial(data_files.write_tu, name='Toy'),
        0,
    ),
    'lstm': (
        dict(model='lstm', dataset='glue/sst2', **dict(TOKENS, max_length=16)),
        None,
        60,
    ),
}
TRAINING = dict(
    base_optimizer='adam',
    learning_rate=0.01,
    lr_schedule='constant',
    batch_size=20,
)
# Where two runs are compared: SGD with momentum, as Adam's normalization
# turns float rounding in near-zero gradients into steps of a full
# learning rate (see tests/test_vit.py).
COMPARED = dict(base_optimizer='sgd', learning_rate=0.05, optimizer='sam')


def _overrides(setting, data_dir):
  overrides, write, mock_examples = SETTINGS[setting]
  overrides = dict(overrides, **TRAINING)
  if write:
    write(data_dir)
    overrides['data_dir'] = str(data_dir)
  return overrides, mock_examples


def _train(tmp_path, setting, name, **knobs):
  overrides, mock_examples = _overrides(setting, tmp_path / 'data')
  config = small_config(**dict(overrides, **knobs))
  mocked = (
      conftest.mock_tfds(num_examples=mock_examples)
      if mock_examples
      else contextlib.nullcontext()
  )
  with mocked:
    return train.train_and_evaluate(config, str(tmp_path / name))


@pytest.mark.parametrize('setting', ['tagger', 'series', 'tu_gcn', 'lstm'])
def test_sam_with_snip_lowers_the_training_loss(tmp_path, setting):
  summary = _train(
      tmp_path,
      setting,
      'sam',
      optimizer='sam',
      num_epochs=4,
      sparsity=0.5,
      pruner='snip',
  )
  losses = [record['train_loss'] for record in summary['history']]
  assert losses[-1] < losses[0], losses
  assert summary['sparsity'] == pytest.approx(0.5, abs=2e-3)
  if setting == 'tagger':  # The treebank's dev file validates.
    assert summary['final_validation_accuracy'] is not None


@pytest.mark.slow
@pytest.mark.parametrize('setting', ['tagger', 'series', 'tu_gcn', 'lstm'])
def test_replicas_equal_separate_runs(tmp_path, setting):
  assert_replicas_are_runs(
      tmp_path,
      functools.partial(_train, tmp_path, setting),
      seed=3,
      num_epochs=2,
      **COMPARED,
  )


@pytest.mark.slow
@pytest.mark.parametrize('setting', ['tagger', 'series', 'tu_gcn', 'lstm'])
def test_four_devices_follow_the_single_device_trajectory(tmp_path, setting):
  # sam_m=5: the same micro-batch ascents on 1 and on 4 devices.
  overrides, mock_examples = _overrides(setting, tmp_path / 'data')
  overrides.update(sam_m=5, **COMPARED)
  if mock_examples:
    overrides['mock_examples'] = mock_examples
  one, four = (train_with(n, tmp_path, **overrides) for n in (1, 4))
  assert_same_run(one, four)
