r"""GSAM: SAM that also minimizes the surrogate gap (Zhuang, Gong, Yuan, Cui,
Adam, Dvornek, Tatikonda, Duncan & Liu, "Surrogate Gap Guided
Sharpness-Aware Minimization", ICLR 2022).

`config.sam_variant='gsam'`. With g = grad f(w) on the batch,
e = rho_t g / ||g|| and g_p = grad f(w + e) (SAM's gradient, which
minimizes the perturbed loss f_p), GSAM splits g into its parts parallel
and orthogonal to g_p and descends along

    g_descent = g_p - alpha * g_perp,
    g_perp = g - (<g, g_p> / ||g_p||^2) g_p.

The step w - lr * g_descent moves along +alpha g_perp, which raises f
without changing f_p to first order, so the surrogate gap h = f_p - f (a
measure of sharpness) shrinks while f_p descends at SAM's rate. alpha = 0
is SAM. The paper lets rho_t follow the learning rate: set
`sam_rho_schedule='learning_rate'` (and `sam_rho_min`) for its schedule;
any variant can use it.

As in the authors' code (gsam.py, `gradient_decompose`), the cosine is
<g, g_p> / (||g|| ||g_p|| + 1e-12) and g_perp = g - cos ||g|| g_p /
(||g_p|| + 1e-12), which is the formula above away from zero gradients.
The original JAX code (big_vision's gsam.py) normalizes g_p without the
epsilon; the two agree to float precision away from zero gradients.
`sam_gsam_alpha` is the paper's alpha: the authors' CIFAR example uses 0.2
(with rho 2 and the adaptive ball), their ImageNet ViT config 0.6 with rho
decaying from 0.6 to 0.1.
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from configuration import config_util
import sam as variants

EPSILON = 1e-12


def decompose(old_grads, new_grads, alpha):
  """g_p - alpha * (g - cos ||g|| g_p / ||g_p||), the authors' form."""
  inner = sum(
      jnp.vdot(g, h)
      for g, h in zip(jax.tree.leaves(old_grads), jax.tree.leaves(new_grads))
  )
  old_norm, new_norm = optax.global_norm(old_grads), optax.global_norm(
      new_grads
  )
  cosine = inner / (old_norm * new_norm + EPSILON)
  return jax.tree.map(
      lambda g, g_p: g_p
      - alpha * (g - cosine * old_norm * g_p / (new_norm + EPSILON)),
      old_grads,
      new_grads,
  )


def gradient(oracle: 'variants.Oracle') -> 'variants.Result':
  """SAM's ascent, then the descent direction with the gap term."""
  grads, clean_aux = oracle.grad_fn(oracle.params)
  direction = variants.ascent_direction(grads, oracle.params, oracle.config)
  e = variants.ascent_perturbation(direction, oracle.rho)
  perturbed_grads, perturbed_aux = oracle.grad_fn(
      jax.tree.map(jnp.add, oracle.params, e)
  )
  descent = decompose(grads, perturbed_grads, oracle.config.sam_gsam_alpha)
  return variants.Result(descent, clean_aux, perturbed_aux)


def check(config: ml_collections.ConfigDict) -> None:
  config_util.require(
      config.sam_gsam_alpha >= 0,
      f'sam_gsam_alpha must be >= 0, got {config.sam_gsam_alpha}',
  )


VARIANT = variants.Variant(
    name='gsam',
    gradient=gradient,
    # alpha, the weight of the surrogate-gap term (0 is SAM).
    defaults={'sam_gsam_alpha': 0.2},
    reads=('sam_weight_decay_in_ascent',),
    check=check,
)
