"""The training step and its dispatch: SGD or a SAM variant on each
device's batch, several steps per call from Python, replicas side by side.

Data parallelism is written pmap-style, as per-device code with explicit
collectives, using `jax.shard_map` (which `jax.pmap` itself is built on since
JAX 0.8, and which JAX recommends for new code). The state is replicated;
each device computes gradients on its slice of the global batch (for SAM,
the ascent too) and `lax.pmean` averages them. One call from Python runs up to
`config.steps_per_dispatch` steps inside a `lax.fori_loop`, drawing batches
on device (see on_device.OnDeviceTrainData), so neither host-to-device
copies nor the Python loop sit between steps. Metrics are summed on device
and read once per epoch.
"""

from collections.abc import Callable
import functools
from typing import Any

import jax
from jax import lax
import jax.numpy as jnp
import ml_collections
import numpy as np

import evaluation
from input_pipeline import feeding
from input_pipeline import sources
import optimizers
from runs import run_state
from runtime import parallel
from runtime import xla_cpu
import sam
import step_evals
import tasks

PyTree = Any
# The config keys of SAM that every variant shares (each variant reads its
# own too, see the sam package).
SAM_KEYS = (
    'rho',
    'sam_variant',
    'sam_m',
    'sam_batchnorm_stats',
    'sam_rho_schedule',
    'sam_rho_min',
    'sam_every_steps',
)


def sam_step_gradient(
    state: run_state.TrainState,
    images: jax.Array,
    labels: jax.Array,
    config: ml_collections.ConfigDict,
    rho: float | jax.Array,
    learning_rate: jax.Array,
    steps_per_epoch: int = 1,
) -> tuple[PyTree, tuple[Any, ...], PyTree]:
  """The SAM variant's gradient on this device's batch (config.sam_variant,
  see the sam package), (losses, logits, BN stats) and its new state.

  With config.sam_m = 0 the ascent sees the whole device batch. Otherwise the
  batch is split into micro-batches of sam_m examples, each takes its own
  ascent (vectorized with vmap) and their descent gradients are averaged:
  m-sharpness. Micro-batches are contiguous slices of the global batch, so
  the result does not depend on the number of devices.
  """
  variant = sam.get(config.sam_variant)
  rho = sam.scheduled_rho(config, rho, learning_rate)

  def gradient_on(params, images, labels, penalty=None):
    return run_state.loss_gradient(state, images, labels, params, penalty)

  def gradient(images, labels):
    result = variant.gradient(
        sam.Oracle(
            grad_fn=functools.partial(
                gradient_on, images=images, labels=labels
            ),
            params=state.params,
            rho=rho,
            config=config,
            step=state.step,
            learning_rate=learning_rate,
            state=state.sam_state,
            inputs=images,
            labels=labels,
            gradient_on=gradient_on,
            losses_on=lambda params, images, labels: run_state.training_losses(
                state, images, labels, params
            )[0],
            predict=functools.partial(run_state.predict, state),
            steps_per_epoch=steps_per_epoch,
        )
    )
    (losses, logits, clean_stats), (_, _, perturbed_stats) = (
        result.clean,
        result.last,
    )
    stats = (
        perturbed_stats
        if config.sam_batchnorm_stats == 'perturbed'
        else clean_stats
    )
    return result.descent, (losses, logits, stats), result.state

  if not config.sam_m:
    return gradient(images, labels)
  micro = lambda x: x.reshape((-1, config.sam_m) + x.shape[1:])
  # Variants with state are refused with m-sharpness (sam.check).
  grads, (losses, logits, stats), _ = jax.vmap(gradient)(
      micro(images), micro(labels)
  )
  mean = lambda tree: jax.tree.map(lambda x: x.mean(0), tree)
  return (
      mean(grads),
      (
          losses.reshape(-1),
          logits.reshape((-1,) + logits.shape[2:]),
          mean(stats),
      ),
      state.sam_state,
  )


def _plain_gradient(
    state: run_state.TrainState, images: jax.Array, labels: jax.Array
) -> tuple[PyTree, tuple[Any, ...], PyTree]:
  """The loss's own gradient, with the SAM variant's state unchanged."""
  grads, aux = run_state.loss_gradient(state, images, labels, state.params)
  return grads, aux, state.sam_state


def _device_mean_floats(tree: PyTree) -> PyTree:
  """Averages the float leaves over the devices (PRNG keys and counters are
  the same on every device already)."""
  return jax.tree.map(
      lambda x: (
          parallel.device_mean(x)
          if jnp.issubdtype(x.dtype, jnp.floating)
          else x
      ),
      tree,
  )


def train_step(
    state: run_state.TrainState,
    batch: dict[str, jax.Array],
    *,
    config: ml_collections.ConfigDict,
    use_sam: bool,
    rho: float | jax.Array,
    schedule: Callable[[jax.Array], jax.Array],
    steps_per_epoch: int = 1,
) -> tuple[run_state.TrainState, dict[str, jax.Array]]:
  """One SGD or SAM step on this device's batch; runs inside shard_map."""
  images, labels = batch['images'], batch['labels']
  sam_gradient = lambda state, images, labels: sam_step_gradient(
      state,
      images,
      labels,
      config,
      rho,
      schedule(state.step),
      steps_per_epoch,
  )
  if not use_sam:
    step_gradient = _plain_gradient
  elif config.sam_every_steps == 1:
    step_gradient = sam_gradient
  else:
    step_gradient = lambda *args: xla_cpu.cond(
        config,
        args[0].step % config.sam_every_steps == 0,
        sam_gradient,
        _plain_gradient,
        *args,
    )
  grads, (losses, logits, batch_stats), sam_state = step_gradient(
      state, images, labels
  )
  grads = parallel.device_mean(grads)
  # Each device normalized with its own batch; averaging the running
  # statistics keeps the devices' copies identical (and the variant's
  # state likewise).
  batch_stats = parallel.device_mean(batch_stats)
  state = state.apply_gradients(
      grads=grads,
      batch_stats=batch_stats,
      sam_state=_device_mean_floats(sam_state),
  )
  # Metrics come from the unperturbed pass.
  flipped = batch.get('flipped', jnp.zeros(labels.shape[0], bool))
  metrics = tasks.metric_sums(
      state.task, losses, logits, labels, jnp.ones(labels.shape[0], bool)
  )
  for metric in tasks.per_example_metrics(state.task):
    metrics[f'{metric.name}_flipped'] = jnp.sum(
        jnp.where(flipped, metric.per_example(logits, labels), 0)
    )
  metrics['count_flipped'] = jnp.sum(flipped.astype(jnp.int32))
  return state, metrics


def zero_metrics(task: tasks.Task) -> dict[str, jax.Array]:
  """Zero sums of the training metrics: evaluation's, and each per-example
  metric on the examples whose label was flipped (label noise)."""
  zeros = tasks.zero_sums(task)
  for metric in tasks.per_example_metrics(task):
    zeros[f'{metric.name}_flipped'] = jnp.float32(0)
  zeros['count_flipped'] = jnp.int32(0)
  return zeros


def host_totals(totals: dict[str, jax.Array]) -> dict[str, Any]:
  """Summed metrics as JSON values (exact: float32 and int32 round-trip)."""
  return {k: np.asarray(v).tolist() for k, v in jax.device_get(totals).items()}


# Sums saved inside an epoch by versions whose tasks did not yet name their
# metrics: the count of correct predictions is the accuracy's sum.
_OLD_TOTALS = {'correct': 'accuracy', 'correct_flipped': 'accuracy_flipped'}


def device_totals(
    saved: dict[str, Any],
    task: tasks.Task,
    evals: step_evals.StepEvals | None = None,
) -> dict[str, jax.Array]:
  """The inverse of host_totals, with the entries of the metrics the run
  sums now: a sum it does not save (evaluations at log-spaced steps turned
  on by the resumed run, see training_run.Run.start) starts at zero, one it
  no longer sums is left out."""
  zeros = zero_metrics(task) | (evals.zero_sums() if evals else {})
  saved = {_OLD_TOTALS.get(k, k): v for k, v in saved.items()}
  return {
      k: jnp.asarray(saved[k], zero.dtype) if k in saved else zero
      for k, zero in zeros.items()
  }


def all_replicas(config: ml_collections.ConfigDict) -> np.ndarray:
  """The `active` argument of make_train_chunk's function that trains every
  replica."""
  return np.ones(config.num_replicas, bool)


def _frozen_unless(
    active: jax.Array,
    new: run_state.TrainState,
    old: run_state.TrainState,
    metrics: dict[str, jax.Array],
) -> tuple[run_state.TrainState, dict[str, jax.Array]]:
  """One replica's step, or, unless `active`, its state unchanged (bar the
  step counter, which replicas share) and zero metrics."""
  keep = lambda new, old: jnp.where(active, new, old)
  state = new.replace(
      params=jax.tree.map(keep, new.params, old.params),
      opt_state=jax.tree.map(keep, new.opt_state, old.opt_state),
      batch_stats=jax.tree.map(keep, new.batch_stats, old.batch_stats),
      sam_state=jax.tree.map(keep, new.sam_state, old.sam_state),
  )
  return state, jax.tree.map(lambda m: jnp.where(active, m, 0), metrics)


# The key of the evaluation sets' inputs among a dispatch's inputs.
_EVAL_INPUTS = 'step_evals'


def make_train_chunk(
    config: ml_collections.ConfigDict,
    data: feeding.TrainFeeder,
    mesh: jax.sharding.Mesh,
    use_sam: bool,
    evals: step_evals.StepEvals | None = None,
    spec: sources.DatasetSpec | None = None,
) -> Callable[..., Any]:
  """(state, inputs, num_steps, active) -> (state, summed metrics), on all
  devices.

  `data.device_batch(inputs, index, step)` returns this device's batch for
  the `index`-th step of the dispatch (global step `step`). `num_steps` is a
  traced value, so a shorter last dispatch of an epoch does not recompile.
  With xla_cpu.steps_per_dispatch(config) == 1 a dispatch is one step, no
  loop. With several replicas the state is stacked and every step is
  vmapped over it; `active` (one bool per replica, all_replicas(config) to
  train all) leaves a replica whose loss diverged as it is. With `evals`
  (and the dataset's `spec`), the steps it schedules are evaluated inside
  the loop and their sums join the metrics (step_evals.py).
  """
  num_replicas = config.num_replicas
  rhos = jnp.asarray(
      [c.rho for c in run_state.replica_configs(config)], jnp.float32
  )
  # The base optimizer's learning rate, for the variants that read it.
  schedule = optimizers.create_learning_rate_schedule(
      config, data.steps_per_epoch
  )

  def replica_step(index, state, inputs, rho, active):
    batch = data.device_batch(inputs, index, state.step)
    new, metrics = train_step(
        state,
        batch,
        config=config,
        use_sam=use_sam,
        rho=rho,
        schedule=schedule,
        steps_per_epoch=data.steps_per_epoch,
    )
    if num_replicas == 1:
      return new, metrics
    return _frozen_unless(active, new, state, metrics)

  def chunk(state, inputs, num_steps, active):
    inputs = dict(inputs)
    eval_inputs = inputs.pop(_EVAL_INPUTS, {})
    if num_replicas == 1:
      inputs = parallel.select_replica(inputs, data.replica_axes, 0)
      active = active[0]

    def body(index, carry):
      state, totals = carry
      step = parallel.over_replicas(
          functools.partial(replica_step, index),
          num_replicas,
          (0, data.replica_axes, 0, 0),
      )
      new_state, metrics = step(
          state, inputs, rhos if num_replicas > 1 else config.rho, active
      )
      if evals is not None:
        metrics |= evals.sums(
            state,
            jnp.ravel(state.step)[0],
            metrics,
            eval_inputs,
            parallel.over_replicas(
                lambda s, x: evaluation.device_sums(s, x, spec)[0],
                num_replicas,
                (0, None),
            ),
            active,
        )
      return new_state, jax.tree.map(jnp.add, totals, metrics)

    zeros = parallel.over_replicas(
        lambda _: zero_metrics(state.task)
        | (evals.zero_sums() if evals else {}),
        num_replicas,
        0,
    )(rhos)
    carry = (state, zeros)
    if xla_cpu.steps_per_dispatch(config) == 1:
      state, totals = body(0, carry)
    else:
      state, totals = lax.fori_loop(0, num_steps, body, carry)
    return state, parallel.device_sum(totals)

  replicated = parallel.REPLICATED
  input_specs = data.input_specs
  if evals is not None:
    input_specs = input_specs | {
        _EVAL_INPUTS: {
            name: feeding.EVAL_INPUT_SPECS for name in evals.eval_inputs
        }
    }
  compiled = parallel.jit_shard(
      chunk,
      mesh,
      (replicated, input_specs, replicated, replicated),
      (replicated, replicated),
      donate_argnums=(0,),
      compiler_options=xla_cpu.compiler_options(config),
  )
  if evals is None:
    return compiled
  return lambda state, inputs, num_steps, active: compiled(
      state, inputs | {_EVAL_INPUTS: evals.eval_inputs}, num_steps, active
  )
