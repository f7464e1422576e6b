r"""Friendly SAM (F-SAM): the ascent without the full gradient's component
(Li, Zhou, Li, Li, Wang, Li, Ji & Zhang, "Friendly Sharpness-Aware
Minimization", CVPR 2024).

`config.sam_variant='friendly_sam'`. The batch gradient g_t is the sum of
the full gradient and the batch's noise; the paper finds that the full
gradient component of SAM's ascent hurts generalization and the noise
carries the benefit. It estimates the full gradient by an exponential
average m of past batch gradients and removes it:

    d_t = g_t - sigma m_{t-1},        m_t = lambda m_{t-1} + (1 - lambda) g_t,
    e_t = rho d_t / ||d_t||_2,        g_descent = grad L(w_t + e_t),

with m = g and d = g at the first step (as in the authors' code,
`first_step`: the average starts at the first gradient, which is then not
removed). sigma = 0 is SAM. m is the variant's state, carried by
checkpoints, replicas and resumes and averaged over devices after each
step. `sam_friendly_sigma` and `sam_friendly_lambda` are the paper's sigma
and lambda (the authors' CIFAR settings: 1 and 0.95). Their code adds
1e-12 to ||d||; a zero d gives e = 0 here.
"""

import ml_collections

from configuration import config_util
import sam as variants


def gradient(oracle: 'variants.Oracle') -> 'variants.Result':
  """grad L at w + rho d / ||d||, d the gradient minus its running mean."""
  grads, clean_aux = oracle.grad_fn(oracle.params)
  g = variants.ascent_direction(grads, oracle.params, oracle.config)
  sigma, decay = (
      oracle.config.sam_friendly_sigma,
      oracle.config.sam_friendly_lambda,
  )
  # The direction uses the average before this step's gradient enters it.
  direction = oracle.state.update(g, lambda m, g: g - sigma * m).average
  state = oracle.state.update(g, lambda m, g: decay * m + (1 - decay) * g)
  e = variants.ascent_perturbation(direction, oracle.rho)
  return variants.descend_at(oracle, e, clean_aux, state)


def check(config: ml_collections.ConfigDict) -> None:
  config_util.require(
      config.sam_friendly_sigma >= 0 and 0 <= config.sam_friendly_lambda < 1,
      'sam_friendly_sigma must be >= 0 and sam_friendly_lambda in [0, 1), '
      f'got {config.sam_friendly_sigma} and {config.sam_friendly_lambda}',
  )


VARIANT = variants.Variant(
    name='friendly_sam',
    gradient=gradient,
    defaults={
        # sigma, how much of the estimated full gradient is removed (0 is SAM).
        'sam_friendly_sigma': 1.0,
        # lambda, the decay of the average of gradients.
        'sam_friendly_lambda': 0.95,
    },
    reads=('sam_weight_decay_in_ascent',),
    check=check,
    init=variants.AverageState.zeros,
)
