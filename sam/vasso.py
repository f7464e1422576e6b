r"""VaSSO: variance-suppressed sharpness-aware optimization (Li & Giannakis,
"Enhancing Sharpness-Aware Optimization Through Variance Suppression",
NeurIPS 2023).

`config.sam_variant='vasso'`. SAM's ascent direction, one mini-batch's
gradient, is noisy, so its adversary is "friendly" to that batch rather
than to the loss. VaSSO ascends along an exponential average of the
gradients instead:

    d_t = (1 - theta) d_{t-1} + theta g_t        (d = g at the first step),
    e_t = rho d_t / ||d_t||_2,
    g_descent = grad L(w_t + e_t).

theta = 1 is SAM. As in the authors' code (vasso.py, `first_step`), d
starts at the first step's gradient and the norm is global over all
parameters; where their code adds 1e-7 to the norm, a zero d gives e = 0
here. d is the variant's state: checkpoints,
replicas and resumes carry it, and after each step it is averaged over the
devices (each updates it with its own batch's gradient, as each takes its
own ascent). `sam_vasso_theta` is the paper's theta (0.9, the authors' default
and CIFAR setting). With `sam_weight_decay_in_ascent`, g + wd * w is averaged.
"""

import ml_collections

from configuration import config_util
import sam as variants


def gradient(oracle: 'variants.Oracle') -> 'variants.Result':
  """grad L at w + rho d / ||d||, d the updated average of gradients."""
  grads, clean_aux = oracle.grad_fn(oracle.params)
  direction = variants.ascent_direction(grads, oracle.params, oracle.config)
  theta = oracle.config.sam_vasso_theta
  state = oracle.state.update(
      direction, lambda d, g: (1 - theta) * d + theta * g
  )
  e = variants.ascent_perturbation(state.average, oracle.rho)
  return variants.descend_at(oracle, e, clean_aux, state)


def check(config: ml_collections.ConfigDict) -> None:
  config_util.require(
      0 < config.sam_vasso_theta <= 1,
      f'sam_vasso_theta must be in (0, 1], got {config.sam_vasso_theta}',
  )


VARIANT = variants.Variant(
    name='vasso',
    gradient=gradient,
    # theta, the weight of the newest gradient in the average (1 is SAM).
    defaults={'sam_vasso_theta': 0.9},
    reads=('sam_weight_decay_in_ascent',),
    check=check,
    init=variants.AverageState.zeros,
)
