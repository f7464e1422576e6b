"""The Transformer text classifier: word tokenization checked by hand, its
parameter count against the formula, padding that changes nothing, and
training on made-up IMDB reviews (tfds.testing.mock_data): SAM lowers the
loss, replicas equal separate runs, 4 devices follow 1."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from input_pipeline import sources
from input_pipeline import text
import models
from runs import run_state
from tests import conftest
from tests.conftest import small_config
from tests.test_multidevice import assert_same_run
from tests.test_multidevice import train_with
from tests.test_replicas import assert_replicas_are_runs
import train

# One block, 16 wide, over 24 tokens of a 50-word vocabulary, trained with
# SGD and momentum where two runs are compared (see tests/test_vit.py).
TEXT = dict(
    model='text_transformer',
    dataset='imdb_reviews',
    hidden_size=16,
    depth=1,
    vocab_size=50,
    max_length=24,
    pooling='mean',
    base_optimizer='sgd',
    learning_rate=0.05,
    lr_schedule='constant',
    batch_size=20,
)
MOCK_EXAMPLES = 120


def test_words_are_lower_cased_without_html_breaks():
  assert text.words(b"It's GREAT.<br /><br />10/10, a must-see!") == [
      "it's",
      'great',
      '10',
      '10',
      'a',
      'must',
      'see',
  ]


def test_vocabulary_ranks_words_by_count_then_alphabetically():
  vocabulary = text.build_vocabulary(['b a c', 'a b', 'a d', 'e'], size=5)
  # a: 3, b: 2, then c, d and e once each: c wins the tie, d and e are out.
  assert vocabulary == {'a': 2, 'b': 3, 'c': 4}
  ids = text.encode(['a x b', 'c c c c c'], vocabulary, max_length=4)
  np.testing.assert_array_equal(
      ids, [[2, text.UNKNOWN, 3, text.PAD], [4, 4, 4, 4]]
  )
  assert ids.dtype == np.int32


def test_mock_reviews_load_as_token_ids_with_a_shared_vocabulary():
  config = small_config(**TEXT, validation_fraction=0.25)
  with conftest.mock_tfds(num_examples=MOCK_EXAMPLES):
    train_split = sources.load_split(config, train=True)
    test_split = sources.load_split(config, train=False)
    validation = sources.load_validation_split(config)
    raw = [
        t
        for t, _ in tfds.as_numpy(
            tfds.builder('imdb_reviews').as_dataset(
                split='train', as_supervised=True, shuffle_files=False
            )
        )
    ]
  assert train_split.images.shape == (90, 24) and len(validation) == 30
  assert test_split.images.dtype == np.int32 and len(test_split) == 120
  assert sources.example_shape(config) == (24,)
  # The vocabulary comes from the 90 training reviews alone.
  kept = ~sources._held_out(MOCK_EXAMPLES, 0.25)  # pylint: disable=protected-access
  expected = text.build_vocabulary(np.asarray(raw, object)[kept], 50)
  np.testing.assert_array_equal(
      train_split.images,
      text.encode(np.asarray(raw, object)[kept], expected, 24),
  )
  assert train_split.images.max() == 49


def _model(pooling, max_length=12):
  config = small_config(
      **dict(
          TEXT, pooling=pooling, max_length=max_length, hidden_size=32, depth=2
      )
  )
  return config, models.create_model(config, num_classes=2)


@pytest.mark.parametrize('pooling', ['cls', 'mean'])
def test_parameter_count_follows_the_formula(pooling):
  config, model = _model(pooling)
  params = model.init(jax.random.key(0), jnp.zeros((1, 12)))
  h, m, v, length, depth = 32, 4 * 32, 50, 12, 2
  block = 2 * 2 * h + 4 * (h * h + h) + h * m + m + m * h + h
  expected = (
      v * h
      + (length + (pooling == 'cls')) * h
      + h * (pooling == 'cls')
      + depth * block
      + 2 * h
      + h * 2
      + 2
  )
  assert sum(x.size for x in jax.tree.leaves(params)) == expected
  del config


@pytest.mark.parametrize('pooling', ['cls', 'mean'])
def test_padding_counts_for_nothing(pooling):
  _, model = _model(pooling)
  params = model.init(jax.random.key(1), jnp.zeros((1, 12)))
  # Perturb the parameters away from their (partly zero) initial values.
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(2), len(leaves))
  params = treedef.unflatten(
      [x + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
  )
  words = jnp.array(
      [
          [5, 7, 9, 3, 0, 0, 0, 0, 0, 0, 0, 0],
          [8, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      ]
  )
  padded = model.apply(params, words)
  for length in (4, 6):
    np.testing.assert_allclose(
        model.apply(params, words[:, :length]), padded, rtol=1e-5, atol=1e-6
    )
  # A word where there was padding does change the logits.
  other = model.apply(params, words.at[:, 5].set(4))
  assert not np.allclose(other, padded, atol=1e-4)


def _train_mock(tmp_path, name, **overrides):
  config = small_config(**dict(TEXT, **overrides))
  with conftest.mock_tfds(num_examples=MOCK_EXAMPLES):
    return train.train_and_evaluate(config, str(tmp_path / name))


def test_sam_lowers_the_training_loss_on_mock_reviews(tmp_path):
  summary = _train_mock(
      tmp_path,
      'sam',
      optimizer='sam',
      num_epochs=4,
      sparsity=0.5,
      pruner='snip',
  )
  losses = [record['train_loss'] for record in summary['history']]
  assert losses[-1] < losses[0], losses
  # Token embeddings are not kernels: pruning leaves them whole.
  _, state, _ = run_state.load_checkpoint(tmp_path / 'sam')
  assert np.all(state.params['token_embedding']['embedding'] != 0)
  assert summary['sparsity'] == pytest.approx(0.5, abs=1e-3)


@pytest.mark.slow
def test_text_replicas_equal_separate_runs(tmp_path):
  assert_replicas_are_runs(
      tmp_path,
      functools.partial(_train_mock, tmp_path),
      seed=3,
      optimizer='sam',
      num_epochs=2,
  )


@pytest.mark.slow
def test_text_on_four_devices_follows_the_single_device_trajectory(tmp_path):
  overrides = dict(TEXT, optimizer='sgd', mock_examples=MOCK_EXAMPLES)
  assert_same_run(
      train_with(1, tmp_path, **overrides), train_with(4, tmp_path, **overrides)
  )
