"""The graph network and its multi-label task: average precision against its
definition, the masked loss by hand, graph records, the GCN against the
dense formula of Kipf & Welling, padding that changes nothing, and training
on made-up molecules (mock_molecules.py): SAM with SNIP lowers the loss,
replicas equal separate runs, 4 devices follow 1."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from input_pipeline import graphs
from input_pipeline import sources
import models
from runs import run_state
import tasks
from tests.conftest import small_config
from tests.mock_molecules import mock_molecules
from tests.test_multidevice import assert_same_run
from tests.test_multidevice import train_with
from tests.test_replicas import assert_replicas_are_runs
import train

# Two graph convolutions, 16 wide, budgets that fit the mock molecules.
GCN = dict(
    model='gcn',
    dataset='ogbg_molpcba',
    hidden_size=16,
    depth=2,
    max_nodes=12,
    max_edges=24,
    base_optimizer='sgd',
    learning_rate=0.1,
    lr_schedule='constant',
    batch_size=20,
)
MOLECULES = 120


def _precision_by_definition(scores, positive):
  """Mean over the positives of the precision among the examples scored
  at least as high (ties counted together)."""
  return np.mean([np.mean(positive[scores >= s]) for s in scores[positive]])


def test_average_precision_matches_its_definition():
  # A hand example: positives ranked 1st and 3rd.
  assert tasks.average_precision(
      np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0], bool)
  ) == (pytest.approx((1 + 2 / 3) / 2))
  rng = np.random.default_rng(0)
  for _ in range(20):
    scores = rng.integers(0, 6, 40).astype(float)  # Many ties.
    positive = rng.random(40) < 0.3
    positive[0] = True
    assert tasks.average_precision(scores, positive) == pytest.approx(
        _precision_by_definition(scores, positive)
    )


def test_mean_average_precision_skips_missing_labels_and_one_class_tasks():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(30, 4))
  labels = rng.integers(0, 2, (30, 4)).astype(np.int8)
  labels[rng.random((30, 4)) < 0.3] = tasks.MISSING
  labels[:, 3] = np.where(labels[:, 3] == tasks.MISSING, tasks.MISSING, 0)
  expected = np.mean(
      [
          _precision_by_definition(
              logits[labels[:, t] >= 0, t], labels[labels[:, t] >= 0, t] == 1
          )
          for t in range(3)
      ]
  )  # Task 3 has no positive.
  assert tasks.mean_average_precision(logits, labels) == pytest.approx(expected)


def test_multilabel_loss_averages_the_labeled_tasks_only():
  logits = np.array([[2.0, -1.0, 0.5], [0.3, 0.0, -4.0]], np.float32)
  labels = np.array([[1, 0, tasks.MISSING], [tasks.MISSING] * 3], np.int8)
  task = tasks.TASKS['multilabel']
  bce = lambda x, y: np.log1p(np.exp(-x)) if y else np.log1p(np.exp(x))
  np.testing.assert_allclose(
      task.losses(logits, labels),
      [(bce(2.0, 1) + bce(-1.0, 0)) / 2, 0.0],
      rtol=1e-6,
  )
  accuracy = tasks.metric(task, 'accuracy').per_example(logits, labels)
  np.testing.assert_allclose(accuracy, [1.0, 0.0])


def _layout(max_nodes=12, max_edges=24):
  return graphs.Layout(graphs.ATOM_FEATURE_SIZES, max_nodes, max_edges)


def test_records_round_trip_and_oversized_graphs_are_refused():
  features = np.arange(27).reshape(3, 9) % 2
  edges = np.array([[0, 1], [1, 0], [1, 2], [2, 1]])
  layout = _layout(4, 6)
  records = graphs.pack([(features, edges)], layout)
  assert records.shape == (1, layout.record_size) == (1, 48)
  nodes, senders, receivers = graphs.unpack(records, layout)
  np.testing.assert_array_equal(nodes[0, :3], features)
  assert np.all(nodes[0, 3] == graphs.PADDING)
  np.testing.assert_array_equal(senders[0], [0, 1, 1, 2, -1, -1])
  np.testing.assert_array_equal(receivers[0], [1, 0, 2, 1, -1, -1])
  with pytest.raises(
      graphs.GraphTooLargeError, match='largest graph has 3 nodes and 4 edges'
  ):
    graphs.pack([(features, edges)], _layout(2, 6))
  # A chirality of 5 is outside OGB's 5 values (0-4).
  bad = features.copy()
  bad[1, 1] = 5
  with pytest.raises(ValueError, match='node features outside their ranges'):
    graphs.pack([(bad, edges)], layout)


def test_mock_molecules_load_as_records_with_missing_labels():
  config = small_config(**GCN, validation_fraction=0.25)
  with mock_molecules(MOLECULES):
    train_split = sources.load_split(config, train=True)
    validation = sources.load_validation_split(config)
    assert sources.example_shape(config) == (12 * 9 + 2 * 24,)
  assert train_split.images.shape == (90, 156) and len(validation) == 30
  assert train_split.labels.shape == (90, 128)
  assert train_split.labels.dtype == np.int8
  assert set(np.unique(train_split.labels)) == {tasks.MISSING, 0, 1}


def _model_and_params(max_nodes=12, max_edges=24):
  config = small_config(**dict(GCN, max_nodes=max_nodes, max_edges=max_edges))
  model = models.create_model(config, num_classes=3)
  params = model.init(
      jax.random.key(0),
      jnp.zeros((1, _layout(max_nodes, max_edges).record_size)),
  )
  # Random biases too (they start at zero).
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  return model, treedef.unflatten(
      [x + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
  )


def _triangle_with_tail():
  features = np.array(
      [
          [5, 1, 2, 3, 1, 0, 2, 1, 0],
          [6, 0, 3, 2, 0, 1, 3, 0, 1],
          [7, 2, 1, 1, 2, 0, 1, 1, 1],
          [8, 0, 0, 0, 0, 0, 0, 0, 0],
      ]
  )
  bonds = [(0, 1), (1, 2), (0, 2), (2, 3)]
  return features, np.array(bonds + [(j, i) for i, j in bonds])


def test_gcn_follows_the_dense_formula():
  model, params = _model_and_params()
  features, edges = _triangle_with_tail()
  logits = model.apply(params, graphs.pack([(features, edges)], _layout()))
  p = jax.tree.map(np.asarray, params['params'])
  offsets = np.cumsum((0,) + graphs.ATOM_FEATURE_SIZES[:-1])
  hidden = p['atom_embedding']['embedding'][features + offsets].sum(1)
  adjacency = np.eye(4)
  adjacency[edges[:, 1], edges[:, 0]] = 1
  scale = np.diag(adjacency.sum(1) ** -0.5)
  for layer in range(2):
    conv = p[f'conv_{layer}']
    hidden = np.maximum(
        scale @ adjacency @ scale @ hidden @ conv['Dense_0']['kernel']
        + conv['bias'],
        0,
    )
  expected = hidden.mean(0) @ p['head']['kernel'] + p['head']['bias']
  np.testing.assert_allclose(logits[0], expected, rtol=1e-4, atol=1e-5)


def test_padding_and_other_graphs_change_nothing():
  model, params = _model_and_params()
  molecule = _triangle_with_tail()
  alone = model.apply(params, graphs.pack([molecule], _layout()))
  other = (np.ones((2, 9), int), np.array([[0, 1], [1, 0]]))
  together = model.apply(params, graphs.pack([other, molecule], _layout()))
  np.testing.assert_allclose(together[1], alone[0], rtol=1e-5, atol=1e-6)
  wide_model, _ = _model_and_params(max_nodes=20, max_edges=40)
  wider = wide_model.apply(params, graphs.pack([molecule], _layout(20, 40)))
  np.testing.assert_allclose(wider[0], alone[0], rtol=1e-5, atol=1e-6)


def test_parameter_count_follows_the_formula():
  _, params = _model_and_params()
  h, depth, tasks_out = 16, 2, 3
  expected = (
      sum(graphs.ATOM_FEATURE_SIZES) * h
      + depth * (h * h + h)
      + h * tasks_out
      + tasks_out
  )
  assert sum(x.size for x in jax.tree.leaves(params)) == expected


def _train_mock(tmp_path, name, **overrides):
  config = small_config(**dict(GCN, **overrides))
  with mock_molecules(MOLECULES):
    return train.train_and_evaluate(config, str(tmp_path / name))


def test_sam_lowers_the_training_loss_on_mock_molecules(tmp_path):
  summary = _train_mock(
      tmp_path,
      'sam',
      optimizer='sam',
      num_epochs=4,
      sparsity=0.5,
      pruner='snip',
      validation_fraction=0.2,
  )
  losses = [record['train_loss'] for record in summary['history']]
  assert losses[-1] < losses[0], losses
  # The atom embeddings are not kernels: pruning leaves them whole.
  _, state, _ = run_state.load_checkpoint(tmp_path / 'sam')
  assert np.all(state.params['atom_embedding']['embedding'] != 0)
  assert summary['sparsity'] == pytest.approx(0.5, abs=1e-3)
  # Mean average precision is logged and ranks the epochs.
  precisions = [r['test_average_precision'] for r in summary['history']]
  assert 0 < summary['final_test_average_precision'] <= 1
  assert summary['best_test_average_precision'] == max(precisions)
  assert 'validation_average_precision' in summary['history'][0]


@pytest.mark.slow
def test_gcn_replicas_equal_separate_runs(tmp_path):
  assert_replicas_are_runs(
      tmp_path,
      functools.partial(_train_mock, tmp_path),
      seed=3,
      optimizer='sam',
      num_epochs=2,
  )


@pytest.mark.slow
def test_gcn_on_four_devices_follows_the_single_device_trajectory(tmp_path):
  # sam_m=5: the same micro-batch ascents on 1 and on 4 devices.
  overrides = dict(GCN, optimizer='sam', sam_m=5, mock_molecules=MOLECULES)
  one, four = (train_with(n, tmp_path, **overrides) for n in (1, 4))
  assert_same_run(one, four)
  assert [r['test_average_precision'] for r in one['history']] == (
      pytest.approx(
          [r['test_average_precision'] for r in four['history']], rel=1e-4
      )
  )
