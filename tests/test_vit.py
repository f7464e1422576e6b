"""The Vision Transformer through the whole training loop: SAM and SNIP
sparsity on Fashion-MNIST, replicas equal to separate runs, and 4 devices
against 1."""

import pytest

from tests.conftest import small_config
from tests.test_multidevice import assert_same_run
from tests.test_multidevice import train_with
from tests.test_replicas import assert_replica_is_run
import train

# A one-block ViT of 7x7 patches (16 tokens and a class token), 16 wide.
# Trained with SGD and momentum, not AdamW, wherever two runs are compared:
# Adam divides by the root of the squared gradients, and so turns the float
# noise of gradients that are zero in exact arithmetic (the attention's key
# bias) into steps of the learning rate's size, differently in runs that
# sum in another order (vmapped replicas, several devices).
VIT = dict(
    model='vit',
    dataset='fashion_mnist',
    hidden_size=16,
    depth=1,
    patch_size=7,
    base_optimizer='sgd',
    learning_rate=0.05,
    lr_schedule='constant',
    num_train_examples=600,
)


@pytest.mark.slow
def test_vit_replicas_with_sam_and_snip_equal_separate_runs(tmp_path):
  knobs = dict(
      VIT, optimizer='sam', sparsity=0.5, pruner='snip', num_epochs=3, seed=3
  )
  side_by_side = train.train_and_evaluate(
      small_config(num_replicas=2, **knobs), str(tmp_path / 'replicas')
  )
  assert side_by_side['num_replicas'] == 2
  for replica in range(2):
    separate = train.train_and_evaluate(
        small_config(**dict(knobs, seed=3 + replica)),
        str(tmp_path / f'{replica}'),
    )
    # SAM on a pruned ViT learns: the training loss falls epoch by epoch.
    losses = [record['train_loss'] for record in separate['history']]
    assert losses[2] < losses[1] < losses[0], losses
    assert separate['sparsity'] == pytest.approx(0.5, abs=1e-3)
    assert_replica_is_run(
        tmp_path / 'replicas', replica, tmp_path / f'{replica}', separate
    )


@pytest.mark.slow
def test_vit_on_four_devices_follows_the_single_device_trajectory(tmp_path):
  overrides = dict(VIT, optimizer='sgd', num_train_examples=400)
  assert_same_run(
      train_with(1, tmp_path, **overrides), train_with(4, tmp_path, **overrides)
  )
