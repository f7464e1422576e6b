"""Evaluation at log-spaced steps inside the dispatches (step_evals.py): the
schedule against its definition, the records against a NumPy computation
of the same GD steps, the trajectory left bit-equal, replicas, four devices
and a resume inside an epoch giving the same records, and TensorBoard."""

import json

import jax
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from configuration import config_util
from configuration import validate
from input_pipeline import on_device
from runs import run_state
import step_evals
from tests.conftest import run_python
from tests.conftest import small_config
from tests.test_regression import diagonal_config
from tests.test_regression import numpy_training
import train


def test_schedule_is_step_zero_then_log_spaced():
  steps = step_evals.schedule(1_000_000, 61)
  assert steps[0] == 0 and steps[1] == 1 and steps[-1] == 999_999
  assert len(steps) <= 61 and np.all(np.diff(steps) > 0)
  # Ten per decade once rounding stops merging them.
  later = steps[steps >= 100]
  np.testing.assert_allclose(np.diff(np.log10(later)), 0.1, atol=0.01)
  assert list(step_evals.schedule(5, 10)) == [0, 1, 2, 3, 4]
  assert len(step_evals.schedule(0, 10)) == 0
  assert list(step_evals.schedule(100, 1)) == [0]
  # Every step below the total: a one-step run is evaluated at step 0.
  assert list(step_evals.schedule(1, 5)) == [0]


def evaluated_config(**overrides):
  # 3 epochs of 40 full-batch steps, each epoch one dispatch.
  return diagonal_config(
      num_epochs=3,
      epoch_passes=40,
      steps_per_dispatch=40,
      log_spaced_evals=12,
      **overrides,
  )


@pytest.fixture(scope='module')
def evaluated_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('evaluated')
  config = evaluated_config()
  return config, workdir, train.train_and_evaluate(config, str(workdir))


def half_mse(u, v, x, y):
  return float(np.mean((x @ (u * v) - y) ** 2) / 2)


def test_records_are_the_losses_after_that_many_steps(evaluated_run):
  config, _, summary = evaluated_run
  records = summary['step_evals']
  steps = step_evals.schedule(120, 12)
  assert [r['step'] for r in records] == list(steps)
  for record in records:
    # NumPy's GD from u = alpha, v = 0 for `step` steps, in float64.
    one = config.copy_and_resolve_references()
    one.update(num_epochs=1, epoch_passes=record['step'])
    u, v, data = numpy_training(one, None)
    x, y = data['x'].astype(float), data['y'].astype(float)
    assert record['train_loss'] == pytest.approx(half_mse(u, v, x, y), rel=1e-4)
    assert record['test_loss'] == pytest.approx(
        half_mse(u, v, data['x_test'], data['y_test']), rel=1e-4
    )


def test_the_trajectory_is_that_of_a_run_without_them(evaluated_run, tmp_path):
  config, workdir, summary = evaluated_run
  plain = config.copy_and_resolve_references()
  plain.log_spaced_evals = 0
  without = train.train_and_evaluate(plain, str(tmp_path))
  for a, b in zip(
      jax.tree.leaves(run_state.load_checkpoint(workdir)[1].params),
      jax.tree.leaves(run_state.load_checkpoint(tmp_path)[1].params),
  ):
    np.testing.assert_array_equal(a, b)
  assert len(without['history']) == len(summary['history']) == 3
  assert without['history'] == [
      {k: v for k, v in r.items() if k != 'examples_per_sec'}
      | {'examples_per_sec': w['examples_per_sec']}
      for r, w in zip(summary['history'], without['history'])
  ]
  assert 'step_evals' not in without


def test_tensorboard_has_each_record_at_its_step(evaluated_run):
  _, workdir, summary = evaluated_run
  events = event_accumulator.EventAccumulator(str(workdir))
  events.Reload()
  for tag, key in (
      ('steps/train/loss', 'train_loss'),
      ('steps/test/loss', 'test_loss'),
  ):
    logged = events.Scalars(tag)
    assert [e.step for e in logged] == [
        r['step'] for r in summary['step_evals']
    ]
    np.testing.assert_allclose(
        [e.value for e in logged],
        [r[key] for r in summary['step_evals']],
        rtol=1e-6,
    )


def test_a_resume_inside_an_epoch_gives_the_same_records(
    evaluated_run, tmp_path
):
  config, _, summary = evaluated_run
  config = config.copy_and_resolve_references()
  config.update(steps_per_dispatch=10, checkpoint_every_steps=10)
  calls = iter(range(1000))
  with pytest.raises(train.Stopped):
    # Stops after the fifth dispatch: step 50, inside the second epoch.
    train.train_and_evaluate(
        config, str(tmp_path), should_stop=lambda: next(calls) == 4
    )
  resumed = train.train_and_evaluate(config, str(tmp_path))
  assert resumed['step_evals'] == summary['step_evals']


def test_replicas_record_what_separate_runs_record(tmp_path):
  rhos = (0.1, 0.3)
  together = train.train_and_evaluate(
      evaluated_config(
          optimizer='sam',
          sam_m=1,
          num_replicas=2,
          replica_rho=rhos,
          data_seed=0,
      ),
      str(tmp_path / 'together'),
  )
  for replica, rho in enumerate(rhos):
    alone = train.train_and_evaluate(
        evaluated_config(
            optimizer='sam', sam_m=1, rho=rho, seed=replica, data_seed=0
        ),
        str(tmp_path / f'alone{replica}'),
    )
    side_by_side = json.loads(
        (
            tmp_path / 'together' / f'replica_{replica}' / 'summary.json'
        ).read_text()
    )
    assert len(side_by_side['step_evals']) == len(alone['step_evals']) == 12
    for a, b in zip(side_by_side['step_evals'], alone['step_evals']):
      assert a['step'] == b['step']
      assert a['train_loss'] == pytest.approx(b['train_loss'], rel=1e-5)
      assert a['test_loss'] == pytest.approx(b['test_loss'], rel=1e-5)
  assert together['num_replicas'] == 2


def test_four_devices_record_what_one_does(evaluated_run, tmp_path):
  _, _, summary = evaluated_run
  run_python(
      [
          'main.py',
          f'--workdir={tmp_path}',
          '--config=configs/diagonal_net.py',
          *(
              f'--config.{k}={v}'
              for k, v in dict(
                  input_dim=6,
                  num_nonzero=2,
                  num_train_examples=8,
                  batch_size=8,
                  num_test_examples=50,
                  eval_batch_size=50,
                  init_scale=0.5,
                  learning_rate=0.1,
                  num_epochs=3,
                  epoch_passes=40,
                  steps_per_dispatch=40,
                  log_spaced_evals=12,
              ).items()
          ),
      ],
      devices=4,
      check=True,
  )
  four = json.loads((tmp_path / 'summary.json').read_text())
  assert four['num_devices'] == 4
  assert len(four['step_evals']) == len(summary['step_evals']) == 12
  for a, b in zip(four['step_evals'], summary['step_evals']):
    assert a['step'] == b['step']
    assert a['train_loss'] == pytest.approx(b['train_loss'], rel=1e-5)
    assert a['test_loss'] == pytest.approx(b['test_loss'], rel=1e-5)


def test_minibatch_classification_records_the_batch_and_the_test_set(
    tmp_path,
):
  summary = train.train_and_evaluate(
      small_config(num_epochs=2, log_spaced_evals=8), str(tmp_path)
  )
  records = summary['step_evals']
  assert [r['step'] for r in records] == list(step_evals.schedule(80, 8))
  assert {'train_loss', 'train_accuracy', 'test_loss', 'test_accuracy'} <= set(
      records[0]
  )
  # The last record is one step before the end: close to the final test
  # accuracy, and the test set is the whole of it (a mean of 0/1 values
  # over its examples).
  assert records[-1]['test_accuracy'] == pytest.approx(
      summary['final_test_accuracy'], abs=0.05
  )


def test_streamed_datasets_are_refused_in_one_line():
  config = small_config(dataset='imagenet2012', log_spaced_evals=10)
  with pytest.raises(config_util.ConfigError, match='in-memory dataset'):
    validate.check_config(config)


def test_a_resume_with_another_schedule_keeps_the_finished_epochs_records(
    evaluated_run, tmp_path
):
  # Stopped inside the second epoch without evaluations, resumed with them
  # (the checkpoint's sums have no entries for them), then extended: the
  # records of the epochs trained with evaluations are those of the
  # uninterrupted run.
  config, _, summary = evaluated_run
  config = config.copy_and_resolve_references()
  config.update(
      steps_per_dispatch=10, checkpoint_every_steps=10, log_spaced_evals=0
  )
  calls = iter(range(1000))
  with pytest.raises(train.Stopped):
    train.train_and_evaluate(
        config, str(tmp_path), should_stop=lambda: next(calls) == 4
    )
  config.log_spaced_evals = 12
  resumed = train.train_and_evaluate(config, str(tmp_path))
  expected = [r for r in summary['step_evals'] if r['step'] >= 80]
  assert [r for r in resumed['step_evals'] if r['step'] >= 80] == expected
  assert expected


@pytest.mark.parametrize(
    'overrides,devices,free',
    [
        ({}, 1, True),  # GD, full batch.
        ({'optimizer': 'sam', 'sam_m': 1}, 4, True),  # 1-SAM.
        ({'optimizer': 'sam'}, 1, True),  # n-SAM on one device.
        # n-SAM on 4 devices: each ascends on the slice the order gives it.
        ({'optimizer': 'sam'}, 4, False),
        # m-SAM: the order makes the groups.
        ({'optimizer': 'sam', 'sam_m': 2}, 1, False),
        # A minibatch (n = 8 is not a multiple of 5: the order decides which
        # examples each pass leaves out).
        ({'batch_size': 5}, 1, False),
    ],
)
def test_only_order_free_full_batch_passes_skip_the_permutation(
    overrides, devices, free
):
  config = diagonal_config(**overrides)
  assert on_device.order_free(config, 8, devices) == free
