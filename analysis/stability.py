"""The linear stability of a minimum, from exact per-example Hessians.

For the training loss L(w) = (1/n) sum_i l_i(w) with per-example Hessians
H_i and H = (1/n) sum_i H_i, Wu, Ma & E (NeurIPS 2018) show that SGD's
stable minima have a small sharpness a = lambda_max(H) and a small
non-uniformity

    s = sqrt(lambda_max((1/n) sum_i H_i^2 - H^2)),

the spread of the per-example curvatures. Shin et al. (UAI 2025) prove that
SAM's stable minima bound these moments more tightly (the Hessian's moments
are more uniform) and measure a and s against width. Both need the H_i
themselves, so this measurement is for small models (at most MAX_PARAMS
parameters: each H_i is P x P, costs P Hessian-vector products, and its
square P^3 multiply-adds): the diagonal linear network, the
one-hidden-layer ReLU network of the 1-D regression, small MLPs.

The H_i are taken with `jax.hessian` of each example's loss at the masked
weights (BatchNorm in inference mode, as every analysis), summed with H_i^2
example by example on device in float32, and diagonalized on the host in
float64.
"""

import jax
from jax import lax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from configuration import config_util
from input_pipeline import sources
from runs import run_state
import sparsity

# The largest model whose P x P per-example Hessians are formed: at 1,024
# parameters, about 2e9 multiply-adds an example.
MAX_PARAMS = 1024


def hessian_moments(
    state: run_state.TrainState,
    inputs: jax.Array,
    labels: jax.Array,
    spec: sources.DatasetSpec,
) -> tuple[jax.Array, jax.Array]:
  """(H, (1/n) sum_i H_i^2) over the n examples, as [P, P] arrays in the
  order of jax.flatten_util.ravel_pytree(state.params)."""
  flat, unravel = jax.flatten_util.ravel_pytree(state.params)

  def example_loss(w, x, y):
    params = sparsity.apply_mask(unravel(w), state.mask)
    logits = run_state.inference_logits(state, params, x[None], spec)
    return state.task.losses(logits, y[None])[0]

  def add(sums, example):
    h = jax.hessian(example_loss)(flat, *example)
    return (sums[0] + h, sums[1] + h @ h), None

  zeros = jnp.zeros((flat.size, flat.size), flat.dtype)
  (total, total_squares), _ = lax.scan(add, (zeros, zeros), (inputs, labels))
  n = labels.shape[0]
  return total / n, total_squares / n


def linear_stability(mean: np.ndarray, mean_squares: np.ndarray) -> dict:
  """a, s and H's spectrum from hessian_moments' two matrices."""
  mean = np.asarray(mean, np.float64)
  mean_squares = np.asarray(mean_squares, np.float64)
  # Symmetrized: the float32 sums are symmetric up to rounding.
  mean = (mean + mean.T) / 2
  spread = mean_squares - mean @ mean
  spread = (spread + spread.T) / 2
  eigenvalues = np.linalg.eigvalsh(mean)
  return {
      'sharpness_a': float(eigenvalues[-1]),
      # (1/n) sum H_i^2 - H^2 is a covariance (positive semi-definite); a
      # negative top eigenvalue can only be rounding.
      'non_uniformity_s': float(
          np.sqrt(max(np.linalg.eigvalsh(spread)[-1], 0))
      ),
      'smallest_eigenvalue': float(eigenvalues[0]),
      'trace': float(eigenvalues.sum()),
      'eigenvalues': eigenvalues.tolist(),
  }


def check_size(num_params: int) -> None:
  config_util.require(
      num_params <= MAX_PARAMS,
      f'analysis part stability forms exact per-example Hessians, which a '
      f'model of {num_params} parameters is too large for (at most '
      f'{MAX_PARAMS}); measure it with the hessian part instead',
  )


_moments = jax.jit(hessian_moments, static_argnums=3)


def measure(
    state: run_state.TrainState, data: dict[str, jax.Array], spec
) -> dict:
  """a, s and H's spectrum at `state` (an analysis state, see
  objective.analysis_state) over the analysis subset `data`."""
  config_util.require(
      jax.process_count() == 1,
      'analysis part stability runs in one process (its per-example '
      'Hessians are formed on one device)',
  )
  num_params = run_state.count_params(state.params)
  check_size(num_params)
  # [batches, batch, ...] on the devices -> [examples, ...] here.
  host = jax.device_get(data)
  inputs, labels = (
      host[k].reshape((-1,) + host[k].shape[2:]) for k in ('images', 'labels')
  )
  results = linear_stability(*_moments(state, inputs, labels, spec))
  return {'num_examples': len(labels), 'num_params': num_params, **results}
