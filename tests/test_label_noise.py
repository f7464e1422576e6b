"""Label noise: exact, seeded, the same for every optimizer, train only."""

import jax
import numpy as np
import pytest

import input_pipeline
from input_pipeline import label_noise
from input_pipeline import sources
from runs import run_state
from runtime import parallel
from tests.conftest import small_config
import train


def clean_split(n=1000, num_classes=10):
  labels = np.arange(n, dtype=np.int32) % num_classes
  return sources.Split(np.zeros((n, 2), np.float32), labels)


@pytest.mark.parametrize('fraction', [0.0, 0.25, 0.5, 0.9])
def test_symmetric_noise_flips_exactly_the_fraction_to_other_classes(fraction):
  split = clean_split()
  noisy = label_noise.add_label_noise(
      split, 10, fraction, 'symmetric', jax.random.key(0)
  )
  changed = noisy.labels != split.labels
  np.testing.assert_array_equal(changed, noisy.flipped)
  assert changed.sum() == round(fraction * 1000)
  if fraction >= 0.5:
    # Uniform over the 9 other classes: every offset appears.
    offsets = (noisy.labels - split.labels)[changed] % 10
    counts = np.bincount(offsets, minlength=10)
    assert counts[0] == 0 and np.all(counts[1:] > 0.5 * changed.sum() / 9)


def test_asymmetric_noise_is_a_fixed_class_permutation():
  split = clean_split()
  noisy = label_noise.add_label_noise(
      split, 10, 0.3, 'asymmetric', jax.random.key(0)
  )
  np.testing.assert_array_equal(
      noisy.labels[noisy.flipped], (split.labels[noisy.flipped] + 1) % 10
  )
  assert noisy.flipped.sum() == 300


def test_noise_depends_on_the_seed_only():
  split = clean_split()
  a = label_noise.add_label_noise(
      split, 10, 0.4, 'symmetric', jax.random.key(1)
  )
  b = label_noise.add_label_noise(
      split, 10, 0.4, 'symmetric', jax.random.key(1)
  )
  c = label_noise.add_label_noise(
      split, 10, 0.4, 'symmetric', jax.random.key(2)
  )
  np.testing.assert_array_equal(a.labels, b.labels)
  assert not np.array_equal(a.flipped, c.flipped)


def data_labels(config):
  train_data, eval_sets = input_pipeline.create_datasets(
      config, parallel.create_mesh(), [run_state.seed_keys(config.seed)]
  )
  inputs, _ = next(train_data.epoch_chunks(0, 1))
  # [device, replica, example]
  return (
      np.asarray(inputs['labels'])[0, 0],
      np.asarray(inputs['flipped'])[0, 0],
      np.asarray(next(eval_sets['test'].groups())['labels']),
  )


def test_sgd_and_sam_runs_with_a_seed_see_the_same_noisy_labels():
  noisy = dict(label_noise=0.25, seed=3)
  sgd = data_labels(small_config(optimizer='sgd', **noisy))
  sam = data_labels(small_config(optimizer='sam', rho=0.1, sam_m=10, **noisy))
  for a, b in zip(sgd, sam):
    np.testing.assert_array_equal(a, b)
  other_seed = data_labels(small_config(label_noise=0.25, seed=4))
  assert not np.array_equal(sgd[1], other_seed[1])
  # The test split is never touched.
  clean = sources.load_split(small_config(), train=False).labels
  test_labels = sgd[2].ravel()[: len(clean)]
  np.testing.assert_array_equal(test_labels, clean)
  assert sgd[1].sum() == 1000  # 25% of MNIST-1D's 4,000 training labels.


def test_training_reports_memorization_of_the_flipped_labels(tmp_path):
  config = small_config(label_noise=0.5, num_epochs=2)
  summary = train.train_and_evaluate(config, str(tmp_path))
  assert summary['label_noise_flipped_fraction'] == 0.5
  last = summary['history'][-1]
  # The epoch's accuracy is the count-weighted mean of its two halves.
  assert last['train_accuracy'] == pytest.approx(
      0.5 * last['train_accuracy_clean'] + 0.5 * last['train_accuracy_flipped'],
      abs=1e-6,
  )
  # A network that learns the clean rule predicts the kept labels far more
  # often than the flipped ones early in training.
  assert last['train_accuracy_clean'] > last['train_accuracy_flipped']
  assert summary['final_train_accuracy_clean'] == last['train_accuracy_clean']
