"""The training loop: schedule, optimizer, resuming, workdirs, streaming."""

import json

import jax
import numpy as np
import pytest

from configuration import config_util
from runs import run_log
from runs import run_state
from runs import rundir
import tasks
from tests import conftest
from tests.conftest import small_config
import train
import train_step


def final_params(workdir):
  _, state, _ = run_state.load_checkpoint(workdir)
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def without_timing(summary):
  summary = dict(summary)
  for key in ('wall_seconds', 'train_examples_per_sec'):
    summary.pop(key)
  if 'history' in summary:
    summary['history'] = [
        {k: v for k, v in h.items() if k != 'examples_per_sec'}
        for h in summary['history']
    ]
  return summary


def replica_summaries(workdir, summary):
  return [
      without_timing(json.loads((workdir / path).read_text()))
      for path in summary.get('replica_summaries', [])
  ]


def stop_after(polls):
  """A should_stop that asks to stop at its `polls`-th call (one call per
  dispatch): what a SIGTERM then does, in-process and deterministic."""
  calls = []
  return lambda: calls.append(None) or len(calls) >= polls


@pytest.mark.parametrize(
    'optimizer,sparsity,replicas',
    [('sam', 0.0, 1), pytest.param('sgd', 0.5, 2, marks=pytest.mark.slow)],
)
def test_a_stopped_and_resumed_run_ends_as_one_that_never_stopped(
    tmp_path, optimizer, sparsity, replicas
):
  config = small_config(
      num_epochs=4,
      optimizer=optimizer,
      sparsity=sparsity,
      pruner='snip',
      lr_boundaries=(0.3, 0.6),
      num_replicas=replicas,
  )
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))

  # 40 steps per epoch in dispatches of 7: polls after the dispatches that
  # end at steps 7, ..., 35, at the end of epoch 1, then at 47, 54 and 61,
  # inside epoch 2. Stopping at the 9th checkpoints step 61 with the epoch's
  # partial metrics; running again continues from it.
  with pytest.raises(train.Stopped, match=r'at step 61 \(epoch 2, step 21 of'):
    train.train_and_evaluate(
        config, str(tmp_path / 'resumed'), should_stop=stop_after(9)
    )
  assert not (tmp_path / 'resumed' / 'summary.json').exists()
  resumed = train.train_and_evaluate(config, str(tmp_path / 'resumed'))

  assert without_timing(resumed) == without_timing(straight)
  assert replica_summaries(tmp_path / 'resumed', resumed) == replica_summaries(
      tmp_path / 'straight', straight
  )
  for a, b in zip(
      final_params(tmp_path / 'straight'), final_params(tmp_path / 'resumed')
  ):
    np.testing.assert_array_equal(a, b)


def test_a_finished_run_is_not_retrained(tmp_path):
  config = small_config(num_epochs=1)
  first = train.train_and_evaluate(config, str(tmp_path))
  again = train.train_and_evaluate(config, str(tmp_path))
  assert without_timing(again) == without_timing(first)


def test_existing_files_are_kept_and_a_different_config_is_refused(tmp_path):
  (tmp_path / 'notes.txt').write_text('mine')
  config = small_config(num_epochs=1)
  train.train_and_evaluate(config, str(tmp_path))
  assert (tmp_path / 'notes.txt').read_text() == 'mine'
  saved = json.loads((tmp_path / 'config.json').read_text())
  assert saved['num_neurons'] == [32, 16] and saved['num_epochs'] == 1
  with pytest.raises(
      config_util.ConfigError, match='differs in: learning_rate'
  ):
    train.train_and_evaluate(
        small_config(num_epochs=1, learning_rate=0.5), str(tmp_path)
    )


def test_streamed_imagenet_trains_with_stacked_dispatches(
    tmp_path, monkeypatch
):
  # An MLP keeps the CPU in the multi-step path (3 steps per dispatch, the
  # last one padded) on mocked ImageNet.
  # The mock's examples come from a Python generator that tf.data runs in its
  # own threads, which breaks Orbax's asyncio-based background saves (the
  # real pipeline is pure TensorFlow): save synchronously here.
  options = rundir.ocp.CheckpointManagerOptions
  monkeypatch.setattr(
      rundir.ocp,
      'CheckpointManagerOptions',
      lambda **kw: options(enable_async_checkpointing=False, **kw),
  )
  config = small_config(
      dataset='imagenet2012',
      image_size=16,
      augment=True,
      batch_size=4,
      eval_batch_size=6,
      num_epochs=2,
      steps_per_dispatch=3,
  )
  with conftest.mock_tfds(num_examples=30):
    summary = train.train_and_evaluate(config, str(tmp_path))
  assert summary['steps'] == 2 * (30 // 4)
  assert [h['step'] for h in summary['history']] == [7, 14]
  assert summary['num_params'] == 16 * 16 * 3 * 32 + 32 + 32 * 16 + 16 + (
      16 * 1000 + 1000
  )
  assert 0 <= summary['final_test_accuracy'] <= 1


def test_training_analysis_without_its_evaluator_is_refused(tmp_path):
  # main.py passes analysis.training.training_evaluators(config); a caller
  # that does not gets an error, not a run that silently measures nothing.
  with pytest.raises(config_util.ConfigError, match='no evaluator was given'):
    train.train_and_evaluate(
        small_config(analysis_every_epochs=1), str(tmp_path / 'run')
    )
  assert not (tmp_path / 'run').exists()


def test_epoch_sums_saved_before_tasks_named_their_metrics_resume():
  # A checkpoint taken inside an epoch by an earlier version holds the count
  # of correct predictions as 'correct'; it is the accuracy's sum now.
  saved = {
      'loss': 6.5,
      'correct': 3.0,
      'count': 4,
      'correct_flipped': 1.0,
      'count_flipped': 2,
  }
  totals = train_step.device_totals(saved, tasks.TASKS['classification'])
  assert set(totals) == set(
      train_step.zero_metrics(tasks.TASKS['classification'])
  )
  means = run_log.mean_metrics(totals)
  assert means == pytest.approx(
      {
          'loss': 6.5 / 4,
          'accuracy': 3 / 4,
          'accuracy_clean': (3 - 1) / (4 - 2),
          'accuracy_flipped': 1 / 2,
      }
  )
