r"""ESAM: SAM with stochastic weight perturbation and sharpness-sensitive
data selection (Du, Yan, Feng, Zhou, Zhen, Goh & Tan, "Efficient
Sharpness-aware Minimization for Improved Training of Neural Networks",
ICLR 2022).

`config.sam_variant='esam'`. Two savings on SAM's second pass:

* Stochastic weight perturbation (SWP): each parameter tensor joins the
  ascent with probability beta (a fresh draw every step), and the ascent is
  rescaled to keep its expected size,

      e = (rho / beta) g_S / ||g_S||_2,    g_S = g on the chosen tensors,
                                                 0 elsewhere.

* Sharpness-sensitive data selection (SDS): a forward pass at w + e gives
  each example's loss rise s_i = l_i(w + e) - l_i(w); the descent gradient
  is that of the mean loss at w + e over the ceil(gamma B) examples with the
  largest rise (of the B in the device's batch),

      g_descent = grad (1/|S|) sum_{i in S} l_i(w + e).

As in the authors' code (Esam.py) the mask is per tensor and the rescaling
by 1/beta is applied; their norm adds 1e-7 (a zero g_S gives e = 0 here),
their mask is drawn at the end of the previous step (with all tensors on
the first), here from the replica's seed and the step, so a resumed run
draws the same. Their selection keeps the examples strictly above the k-th
largest rise (k - 1 of them without ties); here exactly k = ceil(gamma B).
Their SWP also saves the frozen tensors' share of the first backward pass;
XLA computes the whole gradient whatever the mask, so here SWP changes the
update but not the cost, and the saving is SDS's: the second backward sees
gamma B examples. `sam_esam_beta` and `sam_esam_gamma` are the paper's
(the authors' ResNet-18 setting on CIFAR: 0.6 and 0.5). The BatchNorm
statistics of the last pass are those of the chosen examples.
"""

import math

import jax
import jax.numpy as jnp
import ml_collections

from configuration import config_util
import sam as variants


def tensor_mask(params, key: jax.Array, beta: float):
  """1 on each tensor kept (probability beta), 0 on the others."""
  leaves, treedef = jax.tree.flatten(params)
  kept = jax.random.bernoulli(key, beta, (len(leaves),))
  return treedef.unflatten(
      [kept[i].astype(w.dtype) for i, w in enumerate(leaves)]
  )


def chosen_examples(rises: jax.Array, gamma: float) -> jax.Array:
  """Indices of the ceil(gamma B) examples whose loss rose most."""
  count = max(1, math.ceil(gamma * rises.shape[0]))
  return jax.lax.top_k(rises, count)[1]


def gradient(oracle: 'variants.Oracle') -> 'variants.Result':
  """grad of the chosen examples' mean loss at w + e, e the masked and
  rescaled ascent."""
  config = oracle.config
  beta, gamma = config.sam_esam_beta, config.sam_esam_gamma
  grads, clean_aux = oracle.grad_fn(oracle.params)
  key = variants.step_key(oracle)
  mask = tensor_mask(oracle.params, key, beta)
  direction = jax.tree.map(
      jnp.multiply,
      variants.ascent_direction(grads, oracle.params, config),
      mask,
  )
  e = variants.ascent_perturbation(direction, oracle.rho / beta)
  perturbed = jax.tree.map(jnp.add, oracle.params, e)
  if gamma < 1:
    rises = (
        oracle.losses_on(perturbed, oracle.inputs, oracle.labels) - clean_aux[0]
    )
    chosen = chosen_examples(rises, gamma)
    descent, perturbed_aux = oracle.gradient_on(
        perturbed, oracle.inputs[chosen], oracle.labels[chosen]
    )
  else:
    descent, perturbed_aux = oracle.grad_fn(perturbed)
  return variants.Result(descent, clean_aux, perturbed_aux, oracle.state)


def check(config: ml_collections.ConfigDict) -> None:
  config_util.require(
      0 < config.sam_esam_beta <= 1 and 0 < config.sam_esam_gamma <= 1,
      'sam_esam_beta and sam_esam_gamma must be in (0, 1], got '
      f'{config.sam_esam_beta} and {config.sam_esam_gamma}',
  )


VARIANT = variants.Variant(
    name='esam',
    gradient=gradient,
    defaults={
        # beta: the probability that a tensor joins the ascent (1: all).
        'sam_esam_beta': 0.6,
        # gamma: the fraction of examples in the second pass (1: all).
        'sam_esam_gamma': 0.5,
    },
    reads=('sam_weight_decay_in_ascent',),
    check=check,
    init=variants.seed_state,
    per_example=True,
)
