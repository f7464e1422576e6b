r"""USAM: SAM without the normalization of its ascent (Andriushchenko &
Flammarion, "Towards Understanding Sharpness-Aware Minimization", ICML 2022).

`config.sam_variant='usam'`. With g = grad L(w) on the batch,

    e = rho * g,        g_descent = grad L(w + e).

The perturbation grows with the gradient instead of having length rho, so
rho has other units than SAM's (for a quadratic with Hessian H, USAM's step
is g + rho H g). Andriushchenko & Flammarion analyze this form, whose
implicit bias is easier to derive; their 1-SAM is USAM with one example per
ascent (`sam_m=1`). With `sam_weight_decay_in_ascent` the ascent direction
is g + wd * w, as SAM's.
"""

import jax

import sam as variants


def gradient(oracle: 'variants.Oracle') -> 'variants.Result':
  config = oracle.config
  wd = config.weight_decay if config.sam_weight_decay_in_ascent else 0.0
  grads, clean_aux = oracle.grad_fn(oracle.params)
  direction = (
      grads
      if not wd
      else jax.tree.map(lambda g, w: g + wd * w, grads, oracle.params)
  )
  perturbed = jax.tree.map(
      lambda w, d: w + oracle.rho * d, oracle.params, direction
  )
  descent, perturbed_aux = oracle.grad_fn(perturbed)
  return descent, clean_aux, perturbed_aux


VARIANT = variants.Variant(
    name='usam', keys=('sam_weight_decay_in_ascent',), gradient=gradient
)
