"""Replicas trained side by side equal the separate runs they stand for."""

import csv
import json

import jax
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from configuration import config_util
from configuration import validate
import report
from reporting import runs as report_runs
from runs import run_state
from runtime import parallel
from tests.conftest import small_config
from tests.test_regression import diagonal_config
import train

METRICS = (
    'train_loss',
    'train_accuracy',
    'test_loss',
    'test_accuracy',
    'train_accuracy_clean',
    'train_accuracy_flipped',
)


def assert_replica_is_run(replicas_dir, replica, run_dir, separate, atol=1e-5):
  """Replica `replica` of the side-by-side run in `replicas_dir` ends with
  the final parameters and per-epoch test losses of the separate run in
  `run_dir` (whose summary is `separate`)."""
  _, stacked, _ = run_state.load_checkpoint(replicas_dir)
  _, state, _ = run_state.load_checkpoint(run_dir)
  for a, b in zip(
      jax.tree.leaves(state.params),
      jax.tree.leaves(parallel.replica(stacked, replica).params),
  ):
    np.testing.assert_allclose(
        np.asarray(a), np.asarray(b), rtol=1e-4, atol=atol
    )
  summary = json.loads(
      (replicas_dir / f'replica_{replica}' / 'summary.json').read_text()
  )
  for a, b in zip(summary['history'], separate['history']):
    assert a['test_loss'] == pytest.approx(b['test_loss'], rel=1e-4)


def assert_replicas_are_runs(root, train_run, seed, atol=1e-5, **knobs):
  """Trains two replicas side by side (seeds `seed`, `seed` + 1) and each
  as a separate run through `train_run(name, **overrides) -> summary`, which
  writes to root / name, and checks that each replica is its run."""
  train_run('replicas', num_replicas=2, seed=seed, **knobs)
  for replica in range(2):
    separate = train_run(f'{replica}', seed=seed + replica, **knobs)
    assert_replica_is_run(
        root / 'replicas', replica, root / f'{replica}', separate, atol
    )


@pytest.mark.slow
def test_replicas_equal_separate_runs_with_their_seeds_and_rhos(tmp_path):
  # Per-replica seeds drive initialization, SNIP pruning (on each replica's
  # own first batch), data order and label noise; rho differs per replica.
  knobs = dict(
      optimizer='sam',
      sparsity=0.5,
      pruner='snip',
      label_noise=0.2,
      num_train_examples=2000,
      num_epochs=2,
      seed=5,
  )
  rhos = (0.02, 0.1, 0.3)
  side_by_side = train.train_and_evaluate(
      small_config(num_replicas=3, replica_rho=rhos, **knobs),
      str(tmp_path / 'replicas'),
  )
  _, stacked, _ = run_state.load_checkpoint(tmp_path / 'replicas')
  assert side_by_side['num_replicas'] == 3
  for replica, rho in enumerate(rhos):
    single = small_config(**dict(knobs, seed=5 + replica, rho=rho))
    separate = train.train_and_evaluate(single, str(tmp_path / f'{replica}'))
    _, state, _ = run_state.load_checkpoint(tmp_path / f'{replica}')
    mine = parallel.replica(stacked, replica)
    for a, b in zip(
        jax.tree.leaves(state.params), jax.tree.leaves(mine.params)
    ):
      np.testing.assert_allclose(
          np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5
      )
    for a, b in zip(jax.tree.leaves(state.mask), jax.tree.leaves(mine.mask)):
      np.testing.assert_array_equal(a, b)
    summary = json.loads(
        (
            tmp_path / 'replicas' / f'replica_{replica}' / 'summary.json'
        ).read_text()
    )
    # A replica's summary is that of the separate run, config included.
    assert summary['config'] == json.loads(json.dumps(separate['config']))
    for a, b in zip(summary['history'], separate['history']):
      for key in METRICS:
        assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key
  finals = [
      json.loads(
          (tmp_path / 'replicas' / f'replica_{r}' / 'summary.json').read_text()
      )['final_test_loss']
      for r in range(3)
  ]
  assert len(set(finals)) == 3  # Three different models.


def test_each_replica_has_its_own_logs(tmp_path):
  summary = train.train_and_evaluate(
      small_config(num_replicas=2, num_epochs=1), str(tmp_path)
  )
  assert summary['replica_summaries'] == [
      'replica_0/summary.json',
      'replica_1/summary.json',
  ]
  assert summary['train_examples_per_sec'] > 0
  for replica in range(2):
    events = event_accumulator.EventAccumulator(
        str(tmp_path / f'replica_{replica}'),
        size_guidance={event_accumulator.SCALARS: 0},
    )
    events.Reload()
    assert 'test/accuracy' in events.Tags()['scalars']
    replica_summary = json.loads(
        (tmp_path / f'replica_{replica}' / 'summary.json').read_text()
    )
    assert replica_summary['config']['seed'] == replica
    assert replica_summary['config']['num_replicas'] == 1


def test_seeds_times_rhos_replicas_pair_with_the_sgd_runs_of_their_seeds(
    tmp_path,
):
  # replica_seeds=2 x 2 rhos: replicas (seed 3, rho .1), (3, .3), (4, .1),
  # (4, .3), each the separate run it stands for; report.py pairs each rho
  # with the SGD runs of seeds 3 and 4.
  rhos = (0.1, 0.3)
  sweep = tmp_path / 'sweep'
  train.train_and_evaluate(
      diagonal_config(
          optimizer='sam',
          data_seed=0,
          seed=3,
          num_replicas=4,
          replica_rho=rhos,
          replica_seeds=2,
      ),
      str(sweep / 'sam'),
  )
  for replica, (seed, rho) in enumerate(
      [(3, 0.1), (3, 0.3), (4, 0.1), (4, 0.3)]
  ):
    summary = json.loads(
        (sweep / 'sam' / f'replica_{replica}' / 'summary.json').read_text()
    )
    assert (summary['config']['seed'], summary['config']['rho']) == (seed, rho)
    alone = tmp_path / f'alone_{replica}'
    separate = train.train_and_evaluate(
        diagonal_config(optimizer='sam', data_seed=0, seed=seed, rho=rho),
        str(alone),
    )
    assert_replica_is_run(sweep / 'sam', replica, alone, separate)
  for seed in (3, 4):
    train.train_and_evaluate(
        diagonal_config(data_seed=0, seed=seed), str(sweep / f'sgd_{seed}')
    )
  report.write_report(sweep, report_runs.load_summaries(sweep))
  with (sweep / 'sam_gain.csv').open() as f:
    gains = list(csv.DictReader(f))
  assert [(g['rho'], g['n_pairs']) for g in gains] == [
      ('0.1', '2'),
      ('0.3', '2'),
  ]


def test_replica_seeds_must_multiply_the_rhos():
  config = small_config(
      optimizer='sam', num_replicas=5, replica_rho=(0.1, 0.2), replica_seeds=2
  )
  with pytest.raises(config_util.ConfigError, match='must be 2 x len'):
    validate.check_config(config)
