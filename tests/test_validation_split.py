"""validation_fraction: a fixed held-out part of the training split,
evaluated every epoch beside the test set."""

import json

import jax
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from input_pipeline import sources
from runs import run_state
from tests.conftest import small_config
import train


def as_rows(split):
  return {row.tobytes() for row in split.images}


def test_the_held_out_examples_are_fixed_and_apart_from_training():
  config = small_config(validation_fraction=0.2)
  whole = sources.load_split(small_config(), train=True)
  kept = sources.load_split(config, train=True)
  held_out = sources.load_validation_split(config)
  assert len(held_out) == round(0.2 * len(whole))
  assert len(kept) + len(held_out) == len(whole)
  assert not as_rows(kept) & as_rows(held_out)
  assert as_rows(kept) | as_rows(held_out) == as_rows(whole)
  # The same examples for every seed (and optimizer).
  other = sources.load_validation_split(
      small_config(validation_fraction=0.2, seed=7)
  )
  np.testing.assert_array_equal(other.images, held_out.images)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('validation')
  config = small_config(validation_fraction=0.2, num_epochs=2)
  train.train_and_evaluate(config, str(workdir))
  return config, workdir


def test_validation_metrics_are_those_of_the_held_out_examples(run):
  config, workdir = run
  summary = json.loads((workdir / 'summary.json').read_text())
  last = summary['history'][-1]
  # Recomputed independently: the final weights on the held-out examples,
  # one plain forward pass on the host's arrays.
  _, state, _ = run_state.load_checkpoint(workdir)
  held_out = sources.load_validation_split(config)
  logits = state.apply_fn(
      {
          'params': jax.device_get(state.params),
          'batch_stats': state.batch_stats,
      },
      held_out.images,
      train=False,
  )
  correct = int(np.sum(np.argmax(np.asarray(logits), -1) == held_out.labels))
  accuracy = correct / len(held_out)
  losses = -jax.nn.log_softmax(logits)[
      np.arange(len(held_out)), held_out.labels
  ]
  assert last['validation_accuracy'] == pytest.approx(accuracy, abs=1e-9)
  assert last['validation_loss'] == pytest.approx(
      float(losses.mean()), rel=1e-5
  )
  assert summary['final_validation_accuracy'] == last['validation_accuracy']
  best = max(summary['history'], key=lambda r: r['validation_accuracy'])
  assert summary['best_validation_accuracy'] == best['validation_accuracy']
  assert summary['best_validation_epoch'] == best['epoch']
  events = event_accumulator.EventAccumulator(str(workdir))
  events.Reload()
  assert {'validation/accuracy', 'validation/loss', 'test/accuracy'} <= set(
      events.Tags()['scalars']
  )
