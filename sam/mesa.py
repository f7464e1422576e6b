r"""MESA: memory-efficient sharpness-aware training, sharpness through
self-distillation from a moving average of the weights (Du, Zhou, Feng, Tan
& Zhou, "Sharpness-Aware Training for Free", NeurIPS 2022).

`config.sam_variant='mesa'`. No ascent: MESA approximates the sharpness by
how far the model's predictions drift from those of an exponential moving
average of its past weights (a teacher), and adds it to the loss:

    w_ema <- d w_ema + (1 - d) w                    (w_ema = w at the start),
    L_MESA(w) = L(w) + lambda T^2 KL(p_T(w_ema) || p_T(w)),
    p_T = softmax(logits / T),                      g_descent = grad L_MESA,

one backward pass plus the teacher's forward pass (in inference mode, with
the running BatchNorm statistics), so about SGD's cost. Before epoch
`sam_mesa_start_epoch` (counted from 0) the term is off and a step is
plain. As in the authors' code (MESA_train.py with timm's ModelEmaV2):
the KL is teacher-to-student, scaled by T^2, the EMA starts at the initial
weights and is updated after each step, with no bias correction; here the
update happens at the start of the next step, which gives the teacher
every step the same weights. Their teacher averages BatchNorm's running
statistics too; here it uses the model's own. Their window is strict
(kl_start_epoch < epoch): their default 5 is our 6. `sam_mesa_lambda`,
`sam_mesa_temperature` and `sam_mesa_decay` are the paper's lambda (0.8),
T (5) and EMA decay (0.9998, the authors' ImageNet setting; a short run
wants a smaller decay). rho is not read. The teacher's weights are the
variant's state, carried by checkpoints, replicas and resumes.
"""

import jax
from jax import lax
import jax.numpy as jnp
import ml_collections

from configuration import config_util
from runtime import xla_cpu
import sam as variants


def init(params, config, key):
  del config, key
  return params


def distillation(teacher_logits, temperature, weight):
  """logits -> lambda T^2 KL(p_T(teacher) || p_T(logits)), per example."""
  teacher = jax.nn.log_softmax(teacher_logits / temperature)

  def penalty(logits):
    student = jax.nn.log_softmax(logits / temperature)
    kl = jnp.sum(jnp.exp(teacher) * (teacher - student), axis=-1)
    return weight * temperature**2 * kl

  return penalty


def gradient(oracle: 'variants.Oracle') -> 'variants.Result':
  """grad of the loss plus the distillation term from the averaged
  weights (from the start epoch on)."""
  config = oracle.config
  decay = config.sam_mesa_decay
  teacher = jax.tree.map(
      lambda e, w: decay * e + (1 - decay) * w, oracle.state, oracle.params
  )

  def with_distillation(_):
    penalty = distillation(
        lax.stop_gradient(oracle.predict(teacher, oracle.inputs)),
        config.sam_mesa_temperature,
        config.sam_mesa_lambda,
    )
    return oracle.gradient_on(
        oracle.params, oracle.inputs, oracle.labels, penalty
    )

  epoch = oracle.step // oracle.steps_per_epoch
  descent, aux = xla_cpu.cond(
      config,
      epoch >= config.sam_mesa_start_epoch,
      with_distillation,
      lambda _: oracle.grad_fn(oracle.params),
      None,
  )
  return variants.Result(descent, aux, aux, teacher)


def check(config: ml_collections.ConfigDict) -> None:
  config_util.require(
      0 <= config.sam_mesa_decay < 1
      and config.sam_mesa_temperature > 0
      and config.sam_mesa_lambda >= 0,
      'sam_mesa_decay must be in [0, 1), sam_mesa_temperature > 0 and '
      'sam_mesa_lambda >= 0',
  )
  config_util.require(
      config.sam_mesa_start_epoch < config.num_epochs,
      f'sam_mesa_start_epoch={config.sam_mesa_start_epoch} is not before '
      f'num_epochs={config.num_epochs}: the distillation term would never '
      'be used',
  )


VARIANT = variants.Variant(
    name='mesa',
    gradient=gradient,
    # Its term compares softmax distributions over classes.
    tasks=('classification',),
    defaults={
        # lambda: the weight of the distillation term.
        'sam_mesa_lambda': 0.8,
        # T: the softmax temperature of both distributions.
        'sam_mesa_temperature': 5.0,
        # d: the decay of the teacher's moving average of the weights.
        'sam_mesa_decay': 0.9998,
        # The first epoch (from 0) with the distillation term.
        'sam_mesa_start_epoch': 6,
    },
    check=check,
    init=init,
    per_example=True,
)
