"""The diagonal linear network of the implicit-bias studies."""

import flax.linen as nn
import jax
import jax.numpy as jnp


class DiagonalLinear(nn.Module):
  """f(x) = <u * v, x>: a linear model beta = u * v (elementwise) in the
  parametrization whose gradient methods Woodworth et al. (2020) and Pesme
  et al. (2021) analyse, and on which Andriushchenko & Flammarion (ICML
  2022) compare 1-SAM, n-SAM and GD.

  u starts at `init_scale` (alpha) everywhere and v at 0, as in their code:
  the smaller alpha, the closer GD's solution is to the minimum-l1 one
  (the "rich" regime); the larger, to the minimum-l2 one. Gradients:
  dL/du = (dL/dbeta) * v and dL/dv = (dL/dbeta) * u.
  """

  init_scale: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train
    x = x.reshape((x.shape[0], -1))
    u = self.param('u', nn.initializers.constant(self.init_scale), x.shape[-1:])
    v = self.param('v', nn.initializers.zeros, x.shape[-1:])
    return (x @ (u * v).astype(x.dtype))[:, None]


def beta(params: dict[str, jax.Array]) -> jax.Array:
  """The linear predictor u * v of a DiagonalLinear's parameters."""
  return jnp.asarray(params['u']) * jnp.asarray(params['v'])
