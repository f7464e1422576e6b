r"""LookSAM: SAM's ascent every k steps, its direction reused in between
(Liu, Mai, Chen, Hsieh & You, "Towards Efficient and Scalable
Sharpness-Aware Minimization", CVPR 2022).

`config.sam_variant='looksam'`. SAM's gradient g_s = grad L(w + e) differs
from the plain gradient g mostly by a component g_v orthogonal to g, which
changes slowly. Every k-th step LookSAM computes SAM's gradient and keeps

    g_v = g_s - (<g, g_s> / ||g||^2) g        (descends with g_s),

and on the k - 1 steps in between it takes one pass,

    g_descent = g + alpha (||g|| / ||g_v||) g_v,

so a step costs (k + 1) / k passes on average instead of 2. k = 1 is SAM.
g_v is the variant's state (carried by checkpoints, replicas and resumes,
averaged over devices); before the first SAM step (sam_start_epoch or
sam_every_steps can place it later) it is zero and the step is plain.
The norms are global over all parameters, guarded against zero. The paper
uses k = 5 and alpha = 0.7 (`sam_looksam_k`, `sam_looksam_alpha`); its
ascent is SAM's, e = rho g / ||g|| (`sam_weight_decay_in_ascent` applies).
With several replicas both branches run on every step (vmap turns the
branch into a select), and so they do for convolutional models on CPU
(runtime/xla_cpu.cond), so the saving needs one replica and, for a
convolutional network, an accelerator.
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from configuration import config_util
from runtime import xla_cpu
import sam as variants


def _dot(a, b):
  return sum(
      jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )


def init(params, config, key):
  del config, key
  return jax.tree.map(jnp.zeros_like, params)


def gradient(oracle: 'variants.Oracle') -> 'variants.Result':
  """SAM's gradient and a new g_v every k steps, g plus the reused g_v
  otherwise."""
  grads, clean_aux = oracle.grad_fn(oracle.params)
  config = oracle.config

  def sam_step(g_v):
    del g_v
    direction = variants.ascent_direction(grads, oracle.params, config)
    e = variants.ascent_perturbation(direction, oracle.rho)
    g_s, perturbed_aux = oracle.grad_fn(jax.tree.map(jnp.add, oracle.params, e))
    g_squared = _dot(grads, grads)
    projection = _dot(grads, g_s) / jnp.where(g_squared > 0, g_squared, 1.0)
    g_v = jax.tree.map(lambda s, g: s - projection * g, g_s, grads)
    return g_s, perturbed_aux, g_v

  def reuse_step(g_v):
    g_v_norm = optax.global_norm(g_v)
    scale = (
        config.sam_looksam_alpha
        * optax.global_norm(grads)
        / jnp.where(g_v_norm > 0, g_v_norm, 1.0)
    )
    descent = jax.tree.map(lambda g, v: g + scale * v, grads, g_v)
    return descent, clean_aux, g_v

  descent, last_aux, g_v = xla_cpu.cond(
      config,
      oracle.step % config.sam_looksam_k == 0,
      sam_step,
      reuse_step,
      oracle.state,
  )
  return variants.Result(descent, clean_aux, last_aux, g_v)


def check(config: ml_collections.ConfigDict) -> None:
  config_util.require(
      config.sam_looksam_k >= 1 and config.sam_looksam_alpha >= 0,
      'sam_looksam_k must be >= 1 and sam_looksam_alpha >= 0, got '
      f'{config.sam_looksam_k} and {config.sam_looksam_alpha}',
  )


VARIANT = variants.Variant(
    name='looksam',
    gradient=gradient,
    defaults={
        # k: SAM's gradient every k steps (1 is SAM).
        'sam_looksam_k': 5,
        # alpha: the weight of the reused orthogonal component.
        'sam_looksam_alpha': 0.7,
    },
    reads=('sam_weight_decay_in_ascent',),
    check=check,
    init=init,
)
