r"""Random weight perturbation (RWP): the ascent replaced by Gaussian noise
scaled to each filter (Li, Zhou, Li, Li, Wang, Huang & Zhang, "Efficient
Generalization Improvement Guided by Random Weight Perturbation", 2022; and
its mixed form m-RWP, 2024).

`config.sam_variant='rwp'`. No gradient is needed to choose the
perturbation, so the two passes are independent (and could run in
parallel). Each step draws

    e_ij ~ N(0, (sigma ||W_i||)^2)      for a kernel, W_i its output filter
                                          (all but the last axis in Flax's
                                          layout),
    e_j  ~ N(0, (sigma ||p||)^2)         for a bias or normalization vector,

and descends with the mixture of the perturbed and clean gradients,

    g_descent = lambda grad L(w + e) + (1 - lambda) grad L(w).

lambda = 1 is plain RWP (one pass, at w + e, plus the clean one for the
metrics here). `sam_rwp_sigma` and `sam_rwp_lambda` are the paper's gamma
and alpha (CIFAR: 0.01 and 0.5). rho is not read. The authors' m-RWP code
computes the two gradients on two halves of a doubled batch, one per GPU;
here both see the same batch (the form the paper's analysis uses), which
costs two passes per step like SAM. The noise key is the variant's state
(from the replica's seed), so a resumed run draws the same noise, and
every device draws the same e.
"""

import jax
import jax.numpy as jnp
import ml_collections

from configuration import config_util
import sam as variants


def filter_norms(w: jax.Array) -> jax.Array:
  """||W_i|| for each output filter i (the last axis), broadcastable to w;
  the whole vector's norm for a vector."""
  if w.ndim == 1:
    return jnp.linalg.norm(w) + 1e-16
  return jnp.sqrt(jnp.sum(w * w, axis=tuple(range(w.ndim - 1)), keepdims=True))


def noise(params, key: jax.Array, sigma: float):
  """A draw of e (one flat Gaussian draw, scaled filter by filter)."""
  return jax.tree.map(
      lambda w, z: sigma * filter_norms(w) * z,
      params,
      variants.gaussian_like(key, params),
  )


def gradient(oracle: 'variants.Oracle') -> 'variants.Result':
  """The mixture of grad L at w + e and at w."""
  config = oracle.config
  key = variants.step_key(oracle)
  e = noise(oracle.params, key, config.sam_rwp_sigma)
  grads, clean_aux = oracle.grad_fn(oracle.params)
  perturbed, perturbed_aux = oracle.grad_fn(
      jax.tree.map(jnp.add, oracle.params, e)
  )
  mix = config.sam_rwp_lambda
  descent = jax.tree.map(lambda p, g: mix * p + (1 - mix) * g, perturbed, grads)
  return variants.Result(descent, clean_aux, perturbed_aux, oracle.state)


def check(config: ml_collections.ConfigDict) -> None:
  config_util.require(
      config.sam_rwp_sigma > 0 and 0 <= config.sam_rwp_lambda <= 1,
      'sam_rwp_sigma must be > 0 and sam_rwp_lambda in [0, 1], got '
      f'{config.sam_rwp_sigma} and {config.sam_rwp_lambda}',
  )


VARIANT = variants.Variant(
    name='rwp',
    gradient=gradient,
    defaults={
        # sigma: the noise's scale relative to each filter's norm.
        'sam_rwp_sigma': 0.01,
        # lambda: the weight of the perturbed gradient (1 - lambda: clean).
        'sam_rwp_lambda': 0.5,
    },
    check=check,
    init=variants.seed_state,
)
