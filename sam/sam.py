r"""SAM (Foret et al., ICLR 2021), with its multi-step and adaptive ascents.

`config.sam_variant='sam'` (the default). With g = grad L(w) on the batch,

    e = rho * T^2 d / ||T d||_2,   d = g + wd_ascent * w,
    g_descent = grad L(w + e),

where T is the identity (SAM) or ASAM's T_w = |w| + sam_eta on kernels
(Kwon et al., ICML 2021; `sam_adaptive`), and wd_ascent is the weight decay
when `sam_weight_decay_in_ascent` (the L2 penalty in the loss whose
sharpness is measured, as Foret et al.'s code does) and 0 otherwise (as
Shin et al.'s code does). With `sam_steps` = k > 1 the ascent takes k
normalized steps of size rho / k, each projected onto the ball
(Andriushchenko & Flammarion, ICML 2022). See `geometry` for the math.
"""

import ml_collections

from configuration import config_util
import sam as variants
from sam import geometry
import sparsity


def gradient(oracle: 'variants.Oracle') -> 'variants.Result':
  """SAM's (or ASAM's, or the multi-step) descent gradient."""
  config = oracle.config
  ascent_weight_decay = (
      config.weight_decay if config.sam_weight_decay_in_ascent else 0.0
  )
  scale = (
      geometry.adaptive_scale(oracle.params, config.sam_eta, sparsity.is_kernel)
      if config.sam_adaptive
      else None
  )
  return variants.Result(
      *geometry.sam_gradient(
          oracle.grad_fn,
          oracle.params,
          oracle.rho,
          ascent_weight_decay,
          config.sam_steps,
          scale,
      )
  )


def check(config: ml_collections.ConfigDict) -> None:
  config_util.require(
      config.sam_steps >= 1, f'sam_steps must be >= 1, got {config.sam_steps}'
  )
  config_util.require(
      config.sam_eta >= 0, f'sam_eta must be >= 0, got {config.sam_eta}'
  )


VARIANT = variants.Variant(
    name='sam',
    gradient=gradient,
    defaults={
        # Ascent steps of size rho / sam_steps, each projected onto the
        # rho-ball (Andriushchenko & Flammarion, 2022); 1 is SAM. Costs
        # sam_steps + 1 passes.
        'sam_steps': 1,
        # Adaptive SAM (Kwon et al., 2021): the perturbation of each kernel
        # weight scales with |w| + sam_eta; biases and normalization
        # parameters are not rescaled. A larger rho suits it (the paper uses
        # 0.5 to 2 on CIFAR).
        'sam_adaptive': False,
        'sam_eta': 0.01,
    },
    reads=('sam_weight_decay_in_ascent',),
    check=check,
)
