"""Hessian spectrum, sharpness and loss landscape of a trained state.

`Analyzer(config, mesh)` loads the analysis subset once (see objective.py);
its few jitted kernels compile on first use, and later calls on another
state of the same model, such as the next epoch's, reuse them. All
settings come from `config.analysis` (see configs/default.py); all
randomness (probes, start vectors, directions, noise) from
`config.analysis.seed`, so two runs of the same architecture are measured
with the same probes and directions.

`Analyzer.training_scalars` is what training logs every
`config.analysis_every_epochs` epochs; analysis/results.py's `full_analysis`
is what analyze.py writes.
"""

import functools
from typing import Any

import jax
import jax.flatten_util
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from analysis import hessian
from analysis import landscape
from analysis import objective
from analysis import settings as analysis_settings
from analysis import sharpness
from input_pipeline import sources
from runs import run_state
from runtime import parallel
import sam
import sparsity

PyTree = Any

# Lanczos for the extreme eigenvalues checks its convergence after every
# block of this many steps (a host round trip of a few numbers each).
LANCZOS_CHECK_EVERY = 4
# Hutchinson's trace estimate stops at its tolerance only after this many
# probes, so that its standard error is itself estimated from enough of them.
MIN_TRACE_PROBES = 10
# Streams of randomness, folded into the analysis seed.
_LANCZOS, _HUTCHINSON, _SLQ, _NOISE, _DIRECTIONS = range(5)


def _to_host(tree: PyTree) -> PyTree:
  return jax.tree.map(np.asarray, jax.device_get(tree))


def _stack(points: list[Any]) -> PyTree:
  """A list of equally shaped pytrees as one pytree of stacked arrays."""
  return jax.tree.map(lambda *x: np.stack(x), *_to_host(points))


class Analyzer:
  """Measurements of one model on its analysis subset.

  A handful of jitted kernels (metrics, gradient, flat HVP, one Lanczos run,
  m-sharpness) serve every measurement; each compiles on first use and is
  reused for every probe, grid point and later state of the same model.
  """

  def __init__(
      self,
      config: ml_collections.ConfigDict,
      mesh: jax.sharding.Mesh,
      objective_and_data: tuple[Any, PyTree] | None = None,
  ):
    """`objective_and_data`: the function to measure instead of the
    training loss on the analysis subset (an agent's PPO loss on a rollout,
    rl/analysis.py), as an object with objective.Objective's methods and
    the data they take."""
    analysis_settings.check(config)
    # The run (or replica) measured; its analysis settings.
    self.config = config
    self.settings = config.analysis
    self.objective, self.data = objective_and_data or (
        objective.Objective(sources.dataset_spec(config), mesh),
        objective.load_subset(config, mesh),
    )
    # Where the Lanczos kernel leaves its state; its first block starts
    # there too, or it would trace and compile for that block alone.
    self._replicated = jax.sharding.NamedSharding(mesh, parallel.REPLICATED)
    self._key = jax.random.key(self.settings.seed)
    self._metrics = jax.jit(self.objective.metrics)
    self._gradient = jax.jit(self.objective.gradient)
    self._flat_hvp = jax.jit(self._flat_hvp_fn)
    self._lanczos = jax.jit(self._lanczos_fn, static_argnums=4)
    self._lanczos_steps = jax.jit(self._lanczos_steps_fn)
    # Ritz vectors y = V^T u from the eigenvectors u of T, padded to the
    # room of the basis (one compilation whatever the number of steps).
    self._ritz_vectors = jax.jit(
        lambda coefficients, basis: coefficients.T @ basis
    )
    self._worst_case = jax.jit(self._worst_case_fn)
    self._noise_increase = jax.jit(self._noise_increase_fn)
    self._m_sharpness = jax.jit(self._m_sharpness_fn)
    self._random_direction = jax.jit(landscape.random_direction)

  def _key_for(self, stream: int) -> jax.Array:
    return jax.random.fold_in(self._key, stream)

  def _flat_hvp_fn(self, state, data, vector):
    return hessian.flat_operator(
        lambda v: self.objective.hvp(state, state.params, data, v), state.params
    )(vector)

  def _lanczos_fn(self, state, data, start, key, num_iterations):
    return hessian.lanczos(
        lambda v: self._flat_hvp_fn(state, data, v),
        start,
        num_iterations,
        key,
        hessian.flat_support(state.params, state.mask),
    )

  def _lanczos_steps_fn(self, state, data, result, first, key):
    return hessian.lanczos_steps(
        lambda v: self._flat_hvp_fn(state, data, v),
        result,
        first,
        LANCZOS_CHECK_EVERY,
        key,
        hessian.flat_support(state.params, state.mask),
    )

  def _worst_case_fn(self, state, data, rho, scale, num_steps):
    return sharpness.worst_case(
        lambda p: self.objective.loss(state, p, data),
        lambda p: self.objective.gradient(state, p, data),
        state.params,
        rho,
        num_steps,
        scale,
    )[0]

  def _noise_increase_fn(self, state, data, key):
    return sharpness.average_case_increase(
        lambda p: self.objective.loss(state, p, data),
        state.params,
        key,
        self.settings.noise_sigma,
    )

  def _m_sharpness_fn(self, state, data):
    settings = self.settings
    return self.objective.group_mean(
        lambda group_loss, params: sharpness.worst_case(
            group_loss,
            jax.grad(group_loss),
            params,
            settings.rho,
            settings.ascent_steps,
        )[0],
        state,
        state.params,
        data,
        settings.m,
    )

  def operator(
      self, state: run_state.TrainState
  ) -> tuple[hessian.Matvec, jax.Array]:
    """(H at `state` as a map on flat vectors, 0/1 support of the free
    weights)."""
    state = self.objective.analysis_state(state)
    return (
        lambda v: self._flat_hvp(state, self.data, v),
        hessian.flat_support(state.params, state.mask),
    )

  def metrics(self, state: run_state.TrainState) -> dict[str, float]:
    """The loss and the task's per-example metrics on the analysis subset."""
    return {
        k: float(v)
        for k, v in self._metrics(
            self.objective.analysis_state(state), state.params, self.data
        ).items()
    }

  def eigenpairs(
      self,
      state: run_state.TrainState,
      max_iterations: int,
      num_top: int,
      tolerance: float | None = None,
      converge_smallest: bool = True,
  ) -> tuple[np.ndarray, np.ndarray, PyTree, int]:
    """The `num_top` largest Hessian eigenvalues (largest first) then the
    most negative one, from one Lanczos run, with their residuals
    ||H y - theta y||, unit eigenvectors y (a list of pytrees) and the
    number of Lanczos steps taken.

    Lanczos stops as hessian.lanczos_to_tolerance says, checked every
    LANCZOS_CHECK_EVERY steps: `tolerance` (default
    analysis.lanczos_tolerance; 0 takes all `max_iterations` steps) bounds
    the residuals relative to the largest |eigenvalue|; the most negative
    eigenvalue is held to it only if `converge_smallest`, and otherwise its
    residual is NaN (not worth a Hessian-vector product).
    """
    if tolerance is None:
      tolerance = self.settings.lanczos_tolerance
    matvec, support = self.operator(state)
    state = self.objective.analysis_state(state)
    start_key, restart_key = jax.random.split(self._key_for(_LANCZOS))
    start = support * jax.random.normal(start_key, support.shape)
    result, steps, values, coefficients = hessian.lanczos_to_tolerance(
        lambda result, first: self._lanczos_steps(
            state, self.data, result, first, restart_key
        ),
        jax.device_put(
            hessian.lanczos_start(start, max_iterations), self._replicated
        ),
        LANCZOS_CHECK_EVERY,
        num_top,
        tolerance,
        converge_smallest,
    )
    padded = np.zeros((max_iterations, num_top + 1), np.float32)
    padded[:steps] = coefficients
    vectors = self._ritz_vectors(padded, result.basis)
    values = np.float32(values)
    measured = len(values) if converge_smallest else num_top
    residuals = np.full(len(values), np.nan, np.float32)
    residuals[:measured] = hessian.residual_norms(
        matvec, values[:measured], vectors[:measured]
    )
    _, unravel = jax.flatten_util.ravel_pytree(state.params)
    return (values, residuals, _to_host([unravel(v) for v in vectors]), steps)

  def trace(
      self,
      state: run_state.TrainState,
      max_probes: int,
      tolerance: float | None = None,
  ) -> tuple[float, float, int]:
    """Hutchinson's estimate of tr(H), its standard error and the number of
    probes it took: probes are drawn until the standard error is below
    `tolerance` (default analysis.trace_tolerance; 0 takes all) times
    |tr(H)|, after at least MIN_TRACE_PROBES, or `max_probes` of them."""
    if tolerance is None:
      tolerance = self.settings.trace_tolerance
    matvec, support = self.operator(state)
    keys = jax.random.split(self._key_for(_HUTCHINSON), max_probes)
    samples = hessian.samples_to_tolerance(
        lambda i: hessian.hutchinson_samples(
            matvec, [hessian.rademacher(keys[i], support)]
        )[0],
        max_probes,
        MIN_TRACE_PROBES,
        tolerance,
    )
    mean, stderr = hessian.mean_and_stderr(samples)
    return float(mean), float(stderr), len(samples)

  def quadrature(self, state: run_state.TrainState) -> hessian.Quadrature:
    """Stochastic Lanczos quadrature with Rademacher probes."""
    support = hessian.flat_support(state.params, state.mask)
    state = self.objective.analysis_state(state)
    probe_key, restart_key = jax.random.split(self._key_for(_SLQ))
    probes = (
        hessian.rademacher(key, support)
        for key in jax.random.split(probe_key, self.settings.slq_probes)
    )
    return _to_host(
        hessian.slq(
            lambda start, key: self._lanczos(
                state, self.data, start, key, self.settings.slq_iterations
            ),
            probes,
            restart_key,
        )
    )

  def sharpness(self, state: run_state.TrainState) -> dict[str, Any]:
    """Worst-case (one- and multi-step), adaptive, average-case (samples)
    and m-sharpness (if analysis.m)."""
    settings = self.settings
    analysis_state = self.objective.analysis_state(state)
    worst_case = functools.partial(self.worst_case_sharpness, state)
    noise_keys = jax.random.split(self._key_for(_NOISE), settings.noise_samples)
    results = {
        'one_step': worst_case(settings.rho, 1),
        'multi_step': worst_case(settings.rho, settings.ascent_steps),
        'adaptive': worst_case(
            settings.adaptive_rho, settings.ascent_steps, adaptive=True
        ),
        'average_samples': jnp.stack(
            [
                self._noise_increase(analysis_state, self.data, key)
                for key in noise_keys
            ]
        ),
    }
    if settings.m:
      results['m_sharpness'] = self.m_sharpness(state)
    return _to_host(results)

  def worst_case_sharpness(
      self,
      state: run_state.TrainState,
      rho: float,
      num_steps: int,
      adaptive: bool = False,
  ) -> float:
    """Worst-case sharpness on the whole subset; adaptive uses ASAM's scale
    |w| + analysis.adaptive_eta on kernels."""
    scale = (
        sam.adaptive_scale(
            state.params, self.settings.adaptive_eta, sparsity.is_kernel
        )
        if adaptive
        else
        # The plain L2 ball; ones share the adaptive compilation.
        optax.tree_utils.tree_ones_like(state.params)
    )
    return float(
        self._worst_case(
            self.objective.analysis_state(state),
            self.data,
            rho,
            scale,
            num_steps,
        )
    )

  def m_sharpness(self, state: run_state.TrainState) -> float:
    """Mean over groups of analysis.m examples of each group's worst-case
    sharpness (analysis.ascent_steps steps, radius analysis.rho)."""
    return float(
        self._m_sharpness(self.objective.analysis_state(state), self.data)
    )

  def directions(self, state: run_state.TrainState) -> tuple[PyTree, PyTree]:
    """The landscapes' two filter-normalized random directions."""
    return tuple(
        self._random_direction(key, state.params, state.mask)
        for key in jax.random.split(self._key_for(_DIRECTIONS))
    )

  def landscape(self, state: run_state.TrainState) -> dict[str, Any]:
    """Metrics along one and on two filter-normalized random directions."""
    settings = self.settings
    analysis_state = self.objective.analysis_state(state)
    metrics_fn = lambda p: self._metrics(analysis_state, p, self.data)
    first, second = self.directions(state)
    radius = settings.landscape_radius
    alphas = np.linspace(-radius, radius, settings.landscape_points)
    grid = np.linspace(-radius, radius, settings.landscape_2d_points)
    return {
        'alphas': alphas,
        'line': _stack(landscape.line(metrics_fn, state.params, first, alphas)),
        'grid': grid,
        'plane': _stack(
            [
                _stack(row)
                for row in landscape.plane(
                    metrics_fn, state.params, first, second, grid, grid
                )
            ]
        ),
    }

  def interpolation(
      self, state: run_state.TrainState, other: run_state.TrainState
  ) -> dict[str, Any]:
    """Metrics along (1 - t) (w, BN stats) + t (w_other, BN stats_other)."""
    low, high = self.settings.interpolation_range
    ts = np.linspace(low, high, self.settings.interpolation_points)
    # Each run's pruned weights are zero in its params; the path between two
    # masks is a dense network, so the loss is taken without a mask.
    dense = self.objective.analysis_state(state).replace(mask=None)
    metrics_fn = lambda point: self._metrics(
        dense.replace(batch_stats=point[1]), point[0], self.data
    )
    return {
        'ts': ts,
        'path': _stack(
            landscape.interpolation(
                metrics_fn,
                (state.params, state.batch_stats),
                (other.params, other.batch_stats),
                ts,
            )
        ),
    }

  def training_scalars(self, state: run_state.TrainState) -> dict[str, float]:
    """Top Hessian eigenvalue, trace and one-step sharpness, for TensorBoard
    during training (the same tags analyze.py writes)."""
    values, _, _, steps = self.eigenpairs(
        state, self.settings.lanczos_iterations, 1, converge_smallest=False
    )
    trace, _, _ = self.trace(state, self.settings.hutchinson_probes)
    return {
        'hessian/top_eigenvalue': float(values[0]),
        'hessian/lanczos_steps': steps,
        'hessian/trace': trace,
        'sharpness/one_step': self.worst_case_sharpness(
            state, self.settings.rho, 1
        ),
    }


def replica_analyzers(
    configs: list[ml_collections.ConfigDict], mesh: jax.sharding.Mesh
) -> list[Analyzer]:
  """An Analyzer for each replica's config (run_state.replica_configs).

  Replicas differ in seed; without label noise they train on the same
  labels, so they share one Analyzer (one subset, one set of compiled
  kernels).
  """
  by_labels = {}
  for config in configs:
    labels = config.seed if config.get('label_noise') else None
    if labels not in by_labels:
      by_labels[labels] = Analyzer(config, mesh)
  return [
      by_labels[config.seed if config.get('label_noise') else None]
      for config in configs
  ]
