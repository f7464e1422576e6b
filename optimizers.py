"""The one place that maps config names to optimizers and schedules."""

import jax.numpy as jnp
import ml_collections
import optax

# The config keys this module reads (tests/test_layering.py checks that
# every key has one owner).
CONFIG_KEYS = (
    'base_optimizer',
    'learning_rate',
    'momentum',
    'weight_decay',
    'adam_b1',
    'adam_b2',
    'adam_eps',
    'lr_schedule',
    'lr_boundaries',
    'lr_decay_factor',
    'warmup_epochs',
)
LR_SCHEDULES = ('step', 'cosine', 'constant', 'linear')
BASE_OPTIMIZERS = ('sgd', 'nesterov', 'adam', 'adamw')


def create_learning_rate_schedule(
    config: ml_collections.ConfigDict, steps_per_epoch: int
) -> optax.Schedule:
  """The learning rate per step, with `warmup_epochs` of linear warmup.

  step: x lr_decay_factor at each of lr_boundaries (fractions of training);
  cosine: cosine decay to 0 over the steps after the warmup; linear: linear
  decay to 0 over the whole training (PPO's usual annealing); constant.
  """
  total_steps = config.num_epochs * steps_per_epoch
  warmup_steps = int(config.warmup_epochs * steps_per_epoch)
  if config.lr_schedule == 'cosine':
    return optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, warmup_steps, total_steps
    )
  if config.lr_schedule == 'constant':
    schedule = optax.constant_schedule(config.learning_rate)
  elif config.lr_schedule == 'linear':
    schedule = optax.linear_schedule(config.learning_rate, 0.0, total_steps)
  else:
    schedule = optax.piecewise_constant_schedule(
        config.learning_rate,
        {
            int(f * total_steps): config.lr_decay_factor
            for f in config.lr_boundaries
        },
    )
  if not warmup_steps:
    return schedule
  return lambda step: schedule(step) * jnp.minimum(
      1.0, (step + 1) / warmup_steps
  )


def create_optimizer(
    config: ml_collections.ConfigDict, schedule: optax.Schedule
) -> optax.GradientTransformation:
  """The base optimizer; with SAM it receives the SAM gradient.

  sgd (heavy-ball momentum `momentum`, 0 for plain SGD), nesterov and adam
  use coupled weight decay, g + wd * w on every parameter: PyTorch's
  weight_decay, and what Shin et al.'s code does. adamw decays the weights
  decoupled from the gradient (Loshchilov & Hutter, 2019), by lr * wd * w.
  """
  if config.base_optimizer == 'adamw':
    return optax.adamw(
        schedule,
        b1=config.adam_b1,
        b2=config.adam_b2,
        eps=config.adam_eps,
        weight_decay=config.weight_decay,
    )
  if config.base_optimizer == 'adam':
    base = optax.adam(
        schedule, b1=config.adam_b1, b2=config.adam_b2, eps=config.adam_eps
    )
  else:
    base = optax.sgd(
        schedule,
        momentum=config.momentum or None,
        nesterov=config.base_optimizer == 'nesterov',
    )
  return optax.chain(optax.add_decayed_weights(config.weight_decay), base)
