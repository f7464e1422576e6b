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
  grads, clean_aux = oracle.grad_fn(oracle.params)
  direction = variants.ascent_direction(grads, oracle.params, oracle.config)
  return variants.descend_at(
      oracle, jax.tree.map(lambda d: oracle.rho * d, direction), clean_aux
  )


VARIANT = variants.Variant(
    name='usam', gradient=gradient, reads=('sam_weight_decay_in_ascent',)
)
