r"""Hessian spectrum from Hessian-vector products: Lanczos, Hutchinson, SLQ.

Nothing here forms the Hessian H of a loss L(w) in R^n. Everything is built
on the Hessian-vector product, computed forward-over-reverse,

    H v = d/de grad L(w + e v) |_{e=0}     (jax.jvp of jax.grad),

at the cost of about two gradient evaluations. The estimators work on a
symmetric linear operator `matvec: R^n -> R^n` over flat vectors (see
`flat_operator`), so they can be checked on any matrix:

* `lanczos`: m steps with full reorthogonalization give an orthonormal basis
  V (m x n) of the Krylov space span{v, Hv, ..., H^{m-1} v} and the
  tridiagonal T = V H V^T. The eigenvalues of T (Ritz values) converge to
  the extreme eigenvalues of H first, at both ends of the spectrum. For a
  Ritz pair (theta, y = V^T u), H has an eigenvalue within the residual
  ||H y - theta y|| of theta (`residual_norms`: one more product each).
* `hutchinson_samples`: for Rademacher z, E[z^T H z] = tr(H); the mean over
  probes estimates the trace, with a standard error from their spread.
* `slq` (stochastic Lanczos quadrature; Ubaru et al., 2017; Ghorbani et al.,
  2019): for a unit probe v, Lanczos from v gives the nodes theta_j and
  weights tau_j = (u_j)_1^2 of the Gauss quadrature of the spectral measure
  sum_i (v . q_i)^2 delta(lambda_i), exact for polynomials of degree up to
  2m - 1. With v = z / ||z|| for Rademacher z, E[sum_j tau_j theta_j^k] =
  tr(H^k) / n = E[lambda^k] (the spectral moments), and smoothing the nodes
  with a Gaussian gives the spectral density.

Lanczos's iterations depend on each other and run in a `lax.fori_loop`: jit
it with the operator inside. The estimators that average over independent
probes loop over them in Python, so one jitted operator (or Lanczos run) is
compiled once and reused for every probe, and memory holds one probe (and
its basis) at a time; call them outside jit.

Restricting the analysis to a subspace (the unpruned weights of a sparse
network) is done by the operator (H restricted to it) together with a
`support`: start vectors and probes are drawn on the support only, so the
Krylov spaces never leave it.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import jax
from jax import lax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np

PyTree = Any
Matvec = Callable[[jax.Array], jax.Array]

# Lanczos treats a residual this small, relative to ||H v||, as zero: the
# Krylov space is invariant and the iteration restarts.
_BREAKDOWN_TOLERANCE = 1e-5


def hvp(
    loss_fn: Callable[[PyTree], jax.Array], params: PyTree, vector: PyTree
) -> PyTree:
  """H v, forward-over-reverse: the JVP of the gradient along `vector`."""
  return jax.jvp(jax.grad(loss_fn), (params,), (vector,))[1]


def flat_operator(
    linear_fn: Callable[[PyTree], PyTree], params: PyTree
) -> Matvec:
  """`linear_fn` over pytrees shaped like `params`, as a map R^n -> R^n."""
  _, unravel = ravel_pytree(params)
  return lambda x: ravel_pytree(linear_fn(unravel(x)))[0]


def flat_support(params: PyTree, mask: PyTree | None) -> jax.Array:
  """1.0 where a flat parameter is free (kept by `mask`), 0.0 where pruned."""
  flat, _ = ravel_pytree(params)
  if mask is None:
    return jnp.ones_like(flat)
  return ravel_pytree(
      jax.tree.map(lambda m, p: m.astype(p.dtype), mask, params)
  )[0]


class LanczosResult(NamedTuple):
  """m Lanczos steps: T = tridiag(betas[:-1], alphas, betas[:-1]) = V H V^T."""

  alphas: jax.Array  # [m] diagonal of T.
  betas: jax.Array  # [m] norms of the residuals; betas[-1] bounds Ritz errors.
  basis: jax.Array  # [m, n] orthonormal rows V.


def lanczos(
    matvec: Matvec,
    start: jax.Array,
    num_iterations: int,
    key: jax.Array,
    support: jax.Array | None = None,
) -> LanczosResult:
  """Lanczos with full reorthogonalization, from `start` (any norm).

  m = num_iterations steps of `lanczos_steps` from `lanczos_start`.

  Each new vector is orthogonalized against all previous ones, twice
  ("twice is enough": one Gram-Schmidt pass in float32 leaves errors that
  the second removes), so the Ritz values do not repeat (no "ghost"
  eigenvalues). If the residual vanishes, the Krylov space is an invariant
  subspace whose eigenvalues T already holds exactly; the iteration then
  restarts from a random vector on `support`, orthogonal to the basis, with
  a zero off-diagonal entry, so T becomes block diagonal and later blocks
  carry no weight in the quadrature from `start`.

  Args:
    matvec: the symmetric operator H.
    start: the first Krylov vector (normalized here).
    num_iterations: m, the number of steps (and of `matvec` calls).
    key: PRNG key for restart vectors.
    support: 0/1 vector of the coordinates restart vectors may use; None
      means all.

  Returns:
    The tridiagonal coefficients and the basis.
  """
  return lanczos_steps(
      matvec,
      lanczos_start(start, num_iterations),
      0,
      num_iterations,
      key,
      support,
  )


def lanczos_start(start: jax.Array, max_iterations: int) -> LanczosResult:
  """Room for up to `max_iterations` steps, the first vector `start`
  (normalized), no step taken."""
  basis = jnp.zeros((max_iterations,) + start.shape, start.dtype)
  basis = basis.at[0].set(start / jnp.linalg.norm(start))
  zeros = jnp.zeros(max_iterations, start.dtype)
  return LanczosResult(zeros, zeros, basis)


def lanczos_steps(
    matvec: Matvec,
    result: LanczosResult,
    first: int | jax.Array,
    count: int,
    key: jax.Array,
    support: jax.Array | None = None,
) -> LanczosResult:
  """Lanczos steps first, ..., first + count - 1 (those below the room of
  `result`), continuing `result`; see `lanczos`. `first` may be traced, so
  one compilation serves every block of `count` steps."""
  basis = result.basis
  support = jnp.ones_like(basis[0]) if support is None else support

  def orthogonalize(w, basis):
    for _ in range(2):
      w = w - basis.T @ (basis @ w)  # Rows not yet filled are zero.
    return w

  def step(i, carry):
    basis, alphas, betas = carry
    v = basis[i]
    hv = matvec(v)
    alpha = jnp.vdot(v, hv)
    residual = orthogonalize(hv, basis)
    beta = jnp.linalg.norm(residual)
    broke_down = beta <= _BREAKDOWN_TOLERANCE * jnp.linalg.norm(hv)

    def restart():
      fresh = orthogonalize(
          support
          * jax.random.normal(jax.random.fold_in(key, i), v.shape, v.dtype),
          basis,
      )
      return fresh / jnp.linalg.norm(fresh)

    following = lax.cond(broke_down, restart, lambda: residual / beta)
    # After the last step the index is out of bounds and the row is dropped.
    basis = basis.at[i + 1].set(following, mode='drop')
    return (
        basis,
        alphas.at[i].set(alpha),
        betas.at[i].set(jnp.where(broke_down, 0.0, beta)),
    )

  last = jnp.minimum(first + count, basis.shape[0])
  basis, alphas, betas = lax.fori_loop(
      first, last, step, (basis, result.alphas, result.betas)
  )
  return LanczosResult(alphas, betas, basis)


def lanczos_to_tolerance(
    run_block: Callable[[LanczosResult, int], LanczosResult],
    result: LanczosResult,
    block: int,
    num_top: int,
    tolerance: float,
    converge_smallest: bool = True,
) -> tuple[LanczosResult, int, np.ndarray, np.ndarray]:
  """Lanczos in blocks of `block` steps until the extreme Ritz values have
  converged, or the room of `result` is full.

  `run_block(result, first)` takes steps first .. first + block - 1 (see
  `lanczos_steps`). After each block, `extreme_ritz` gives the num_top
  largest Ritz values and the smallest with their residual bounds. It stops
  when, at two checks in a row, every bound (the smallest value's only if
  `converge_smallest`) is below `tolerance` times the largest |Ritz value|
  and the top values moved less than that in between. A small residual puts
  a Ritz value near *an* eigenvalue, not necessarily the largest: a start
  vector that touches the top eigenvector little finds the second largest
  first, and the second check keeps going while the top one emerges. (No
  Krylov method can see an eigenvector its start vector almost misses;
  tolerance = 0 takes every step.)

  Returns:
    (result, steps taken m, the chosen Ritz values, their eigenvectors of T
    [m, num_top + 1]), as extreme_ritz gives them.
  """
  max_iterations = result.basis.shape[0]
  if max_iterations <= num_top:
    raise ValueError(
        f'{max_iterations} Lanczos steps give no more than '
        f'{max_iterations} Ritz values; {num_top + 1} are '
        'reported'
    )
  steps, previous = 0, None
  while True:
    result = run_block(result, steps)
    steps = min(steps + block, max_iterations)
    if steps <= num_top:
      continue
    alphas, betas = jax.device_get((result.alphas, result.betas))
    values, coefficients, bounds = extreme_ritz(
        alphas[:steps], betas[:steps], num_top
    )
    limit = tolerance * np.max(np.abs(values))
    converged = np.all((bounds if converge_smallest else bounds[:-1]) <= limit)
    if steps == max_iterations or (
        converged
        and previous is not None
        and np.all(np.abs(values[:-1] - previous) <= limit)
    ):
      return result, steps, values, coefficients
    previous = values[:-1] if converged else None


def extreme_ritz(
    alphas: np.ndarray, betas: np.ndarray, num_top: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """After m steps: the `num_top` largest Ritz values (largest first) and
  the smallest, the eigenvectors u of T [m, num_top + 1] that give their
  Ritz vectors y = V^T u, and the bounds beta_m |u_m| on their residuals
  ||H y - theta y|| (exact in exact arithmetic), from the coefficients of
  the m steps, in float64 on the host."""
  alphas, betas = np.float64(alphas), np.float64(betas)
  matrix = np.diag(alphas) + np.diag(betas[:-1], 1) + np.diag(betas[:-1], -1)
  values, vectors = np.linalg.eigh(matrix)
  chosen = np.append(np.arange(-1, -num_top - 1, -1), 0)
  return (
      values[chosen],
      vectors[:, chosen],
      betas[-1] * np.abs(vectors[-1, chosen]),
  )


def tridiagonal(result: LanczosResult) -> jax.Array:
  """The m x m matrix T."""
  off = result.betas[:-1]
  return jnp.diag(result.alphas) + jnp.diag(off, 1) + jnp.diag(off, -1)


def residual_norms(
    matvec: Matvec, values: jax.Array, vectors: jax.Array
) -> jax.Array:
  """||H y - theta y|| for each pair: H has an eigenvalue within it of theta.

  Computed with one product per pair rather than from the Lanczos
  coefficients (beta_m |u_m|), which underflow to zero in float32 once a
  pair has converged and so understate the rounding error.
  """
  return jnp.stack(
      [
          jnp.linalg.norm(matvec(y) - theta * y)
          for theta, y in zip(values, vectors)
      ]
  )


def rademacher(key: jax.Array, support: jax.Array) -> jax.Array:
  """A probe: random signs on `support`, zero elsewhere."""
  return support * jax.random.rademacher(key, support.shape, support.dtype)


def hutchinson_samples(
    matvec: Matvec, probes: Iterable[jax.Array]
) -> jax.Array:
  """z^T H z for each probe z: unbiased samples of tr(H) (Hutchinson, 1989).

  With Rademacher probes on a support S, E[z z^T] is the projector on S, so
  the samples estimate the trace of H restricted to S.
  """
  return jnp.stack([jnp.vdot(z, matvec(z)) for z in probes])


def samples_to_tolerance(
    sample: Callable[[int], jax.Array],
    max_count: int,
    min_count: int,
    tolerance: float,
) -> np.ndarray:
  """sample(0), sample(1), ... until their mean's standard error is below
  `tolerance` times its absolute value (once there are `min_count`), or
  `max_count` of them; tolerance = 0 takes all.

  Stopping on the samples' own spread makes the reported standard error a
  little optimistic when few samples are taken; `min_count` keeps that
  small.
  """
  samples = []
  for index in range(max_count):
    samples.append(float(sample(index)))
    if tolerance and len(samples) >= min_count:
      stderr = np.std(samples, ddof=1) / np.sqrt(len(samples))
      if stderr <= tolerance * abs(np.mean(samples)):
        break
  return np.asarray(samples)


class Quadrature(NamedTuple):
  """Gauss quadrature of spectral measures (one row per probe)."""

  nodes: jax.Array  # [..., m] Ritz values.
  weights: jax.Array  # [..., m] squared first components; rows sum to 1.


def gauss_quadrature(result: LanczosResult) -> Quadrature:
  """The quadrature of the spectral measure of Lanczos's start vector."""
  values, eigenvectors = jnp.linalg.eigh(tridiagonal(result))
  return Quadrature(values, eigenvectors[0] ** 2)


def slq(
    lanczos_fn: Callable[[jax.Array, jax.Array], LanczosResult],
    probes: Iterable[jax.Array],
    key: jax.Array,
) -> Quadrature:
  """Stochastic Lanczos quadrature: one Lanczos run per probe, stacked.

  Args:
    lanczos_fn: (start, restart key) -> LanczosResult, e.g. a jitted
      `lanczos` with the operator bound, compiled once for all probes.
    probes: start vectors (memory holds one probe and its basis at a time).
    key: PRNG key for the restart vectors.
  """
  rows = [
      gauss_quadrature(lanczos_fn(probe, jax.random.fold_in(key, i)))
      for i, probe in enumerate(probes)
  ]
  return Quadrature(*(jnp.stack(x) for x in zip(*rows)))


def quadrature_moments(
    quadrature: Quadrature, orders: Sequence[int]
) -> jax.Array:
  """[probes, len(orders)]: sum_j tau_j theta_j^k, samples of E[lambda^k]."""
  powers = jnp.asarray(orders)[:, None, None]
  return jnp.sum(quadrature.weights * quadrature.nodes**powers, axis=-1).T


def spectral_density(
    quadrature: Quadrature, grid: jax.Array, sigma: float | jax.Array
) -> jax.Array:
  """The spectral density on `grid`, each node smoothed by N(0, sigma^2).

  phi(t) = mean over probes of sum_j tau_j N(t; theta_j, sigma^2); it
  integrates to 1 (up to the mass of the Gaussians outside the grid).
  """
  distance = grid[:, None, None] - quadrature.nodes[None]
  gaussians = jnp.exp(-0.5 * (distance / sigma) ** 2) / (
      sigma * jnp.sqrt(2 * jnp.pi)
  )
  return jnp.mean(jnp.sum(quadrature.weights * gaussians, axis=-1), axis=-1)


def mean_and_stderr(samples: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean over the first axis and its standard error, std / sqrt(count)."""
  count = samples.shape[0]
  return (
      jnp.mean(samples, axis=0),
      jnp.std(samples, axis=0, ddof=1) / jnp.sqrt(count),
  )
