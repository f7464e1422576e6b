"""Run by test_multidevice.py in a subprocess with N virtual CPU devices.

Usage: python -m tests.multidevice_worker OUT.npz WORKDIR OVERRIDES_JSON
Trains the small test config with the overrides (an override
`mock_examples=N` reads N made-up examples per split through
tfds.testing.mock_data instead of real data, `mock_molecules=N` N made-up
molecules, see mock_molecules.py) and saves the final
parameters (and the SAM variant's state), the metrics history and, for SAM
with per-device ascent, the
first step checked against a per-device computation done by hand.
"""

import contextlib
import functools
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

import input_pipeline
from input_pipeline import sources
import models
import optimizers
from runs import run_state
from runtime import parallel
import sam
from tests import conftest
from tests import mock_molecules
from tests.conftest import small_config
import train
import train_step


def first_sam_step_by_hand(config):
  """Max |difference| between the framework's first SAM step and one
  computed here: SAM on each device's quarter of the batch, then averaged."""
  mesh = parallel.create_mesh()
  keys = run_state.seed_keys(config.seed)
  spec = sources.dataset_spec(config)
  data, _ = input_pipeline.create_datasets(config, mesh, [keys])
  schedule = optimizers.create_learning_rate_schedule(
      config, data.steps_per_epoch
  )
  state = run_state.create_train_state(
      models.create_model(config, spec.num_classes),
      data.example_shape,
      keys['init'],
      optimizers.create_optimizer(config, schedule),
      spec.task,
  )
  # A copy: the training step donates (and so deletes) its input state.
  placed = jax.device_put(
      jax.device_get(state), jax.NamedSharding(mesh, parallel.REPLICATED)
  )
  inputs, _ = next(data.epoch_chunks(0, 1))
  stepped, _ = train_step.make_train_chunk(config, data, mesh, use_sam=True)(
      placed, inputs, 1, train_step.all_replicas(config)
  )

  split = sources.load_split(config, train=True)
  order = np.asarray(
      jax.random.permutation(jax.random.fold_in(keys['data'], 0), len(split))
  )
  batch = order[: config.batch_size]
  grads = []
  for part in np.split(batch, jax.device_count()):
    images = sources.normalize(jnp.asarray(split.images[part]), spec)
    labels = jnp.asarray(split.labels[part])
    g, _, _ = sam.sam_gradient(
        functools.partial(run_state.loss_gradient, state, images, labels),
        state.params,
        config.rho,
    )
    grads.append(g)
  mean = jax.tree.map(lambda *g: sum(g) / len(g), *grads)
  expected = state.apply_gradients(grads=mean)
  return max(
      float(jnp.max(jnp.abs(a - b)))
      for a, b in zip(
          jax.tree.leaves(stepped.params), jax.tree.leaves(expected.params)
      )
  )


def main(out, workdir, overrides):
  overrides = json.loads(overrides)
  mock_examples = overrides.pop('mock_examples', 0)
  molecules = overrides.pop('mock_molecules', 0)
  config = small_config(**overrides)
  if molecules:
    mocked = mock_molecules.mock_molecules(molecules)
  elif mock_examples:
    mocked = conftest.mock_tfds(num_examples=mock_examples)
  else:
    mocked = contextlib.nullcontext()
  with mocked:
    summary = train.train_and_evaluate(config, workdir)
    by_hand = (
        first_sam_step_by_hand(config)
        if config.optimizer == 'sam'
        and config.sam_variant == 'sam'
        and not config.sam_m
        else -1.0
    )
  _, state, _ = run_state.load_checkpoint(workdir)
  # The parameters, then the SAM variant's state (if any).
  leaves = {
      str(i): np.asarray(x)
      for i, x in enumerate(jax.tree.leaves((state.params, state.sam_state)))
  }
  np.savez(
      out,
      history=json.dumps(summary['history']),
      by_hand=by_hand,
      devices=jax.device_count(),
      **leaves
  )


if __name__ == '__main__':
  main(*sys.argv[1:])
