"""A tiny MLP on MNIST-1D with its analysis subset, and the exact Hessian of
its loss computed independently of the framework (jax.hessian of a plain
cross-entropy on the same examples)."""

import functools

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import optax

from analysis import measure
from configs import default
import models
from runs import run_state
from runtime import parallel
import sparsity
from tests.conftest import small_config


def tiny_config(**analysis_overrides):
  """An MLP (8,) on MNIST-1D (40 inputs, 10 classes): 418 parameters.

  One Lanczos length for the extreme eigenvalues and SLQ, so both share a
  compilation.
  """
  config = small_config(num_neurons=(8,))
  config.analysis = default.get_config().analysis
  config.analysis_every_epochs = 0
  settings = dict(
      num_examples=256,
      batch_size=128,
      lanczos_iterations=60,
      slq_iterations=60,
      slq_probes=20,
      hutchinson_probes=200,
      m=32,
      **analysis_overrides
  )
  for key, value in settings.items():
    config.analysis[key] = value
  return config


def tiny_state(config, sparsity_level=0.0, seed=0):
  """A freshly initialized state, replicated, pruned at `sparsity_level`."""
  init_key, mask_key = jax.random.split(jax.random.key(seed))
  model = models.create_model(config, num_classes=10)
  params = model.init(init_key, jnp.zeros((1, 40)))['params']
  mask = sparsity.compute_mask('random', sparsity_level, params, mask_key)
  state = run_state.TrainState.create(
      apply_fn=model.apply,
      params=sparsity.apply_mask(params, mask),
      tx=optax.sgd(0.1),
      batch_stats={},
      mask=mask,
  )
  return jax.device_put(
      state,
      jax.NamedSharding(parallel.create_mesh(), jax.sharding.PartitionSpec()),
  )


@functools.cache
def tiny_analyzer():
  """The Analyzer of tiny_config(), shared so that tests share compilations."""
  return measure.Analyzer(tiny_config(), parallel.create_mesh())


def subset_arrays(analyzer):
  """The analysis subset as flat host arrays (images [n, 40], labels [n])."""
  images = np.asarray(analyzer.data['images'])
  return (
      images.reshape(-1, images.shape[-1]),
      np.asarray(analyzer.data['labels']).ravel(),
  )


def flat_loss(state, images, labels):
  """x -> mean cross-entropy at the flat parameters x (no framework code)."""
  _, unravel = ravel_pytree(state.params)

  def loss(x):
    logits = state.apply_fn({'params': unravel(x)}, images)
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, labels
    ).mean()

  return loss


@functools.cache
def _exact(sparsity_level):
  config = tiny_config()
  state = tiny_state(config, sparsity_level)
  analyzer = tiny_analyzer()
  x0, _ = ravel_pytree(state.params)
  hessian = np.asarray(
      jax.hessian(flat_loss(state, *subset_arrays(analyzer)))(x0), np.float64
  )
  hessian = (hessian + hessian.T) / 2
  free = np.asarray(
      ravel_pytree(
          jax.tree.map(
              lambda p, m: jnp.broadcast_to(m, p.shape),
              state.params,
              state.mask
              if state.mask is not None
              else jax.tree.map(lambda p: True, state.params),
          )
      )[0],
      bool,
  )
  return config, state, analyzer, hessian, free


def exact(sparsity_level=0.0):
  """(config, state, analyzer, dense Hessian [n, n], free-weight mask [n]).

  With pruning, the Hessian the analysis studies is hessian[free][:, free].
  """
  return _exact(sparsity_level)
