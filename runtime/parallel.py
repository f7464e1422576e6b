"""Devices: the mesh, per-device code, collectives and stacked replicas.

Data parallelism is written pmap-style, as per-device code with explicit
collectives, using `jax.shard_map` (which `jax.pmap` itself is built on since
JAX 0.8, and which JAX recommends for new code). Every module that runs code
on the devices builds it with `shard` or `jit_shard` over the one mesh axis
AXIS.

Replicas (seeds trained side by side, config.num_replicas) are stacked on a
leading axis of every state leaf; one replica is stored unstacked.
"""

from collections.abc import Callable
from typing import Any

import jax
from jax import lax
from jax.experimental import multihost_utils
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
import numpy as np

PyTree = Any
AXIS = 'batch'  # The mesh axis: the global batch is split along it.
REPLICATED = P()


def create_mesh() -> jax.sharding.Mesh:
  """A 1D mesh over all devices, grouped by process."""
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  return jax.sharding.Mesh(np.array(devices), (AXIS,))


def shard(
    fn: Callable[..., Any], mesh: jax.sharding.Mesh, in_specs, out_specs
) -> Callable[..., Any]:
  """shard_map(fn): `fn` is per-device code over the mesh axis AXIS.

  check_vma=False because device_mean/device_sum skip the collective on a
  single device.
  """
  return jax.shard_map(
      fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False
  )


def jit_shard(
    fn: Callable[..., Any],
    mesh: jax.sharding.Mesh,
    in_specs,
    out_specs,
    donate_argnums=(),
    compiler_options: dict[str, str] | None = None,
) -> Callable[..., Any]:
  """jit(shard(fn)), donating the arguments `donate_argnums`, compiled with
  XLA's `compiler_options`."""
  return jax.jit(
      shard(fn, mesh, in_specs, out_specs),
      donate_argnums=donate_argnums,
      compiler_options=compiler_options,
  )


def device_mean(tree: PyTree) -> PyTree:
  """Mean over the devices; the identity on a single device.

  XLA does not elide an all-reduce over one device: on a CPU it costs ~13%
  of an MLP step, so the single-device case skips it.
  """
  return tree if lax.axis_size(AXIS) == 1 else lax.pmean(tree, AXIS)


def device_sum(tree: PyTree) -> PyTree:
  """Sum over the devices; the identity on a single device."""
  return tree if lax.axis_size(AXIS) == 1 else lax.psum(tree, AXIS)


def global_array(
    mesh: jax.sharding.Mesh, spec: P, local: np.ndarray
) -> jax.Array:
  """The global array whose process-local part is `local`."""
  return jax.make_array_from_process_local_data(
      jax.NamedSharding(mesh, spec), local
  )


def per_device_copies(mesh: jax.sharding.Mesh, x: np.ndarray) -> jax.Array:
  """[devices, ...]: every device holds its process's whole `x`."""
  count = jax.local_device_count()
  return global_array(mesh, P(AXIS), np.broadcast_to(x, (count,) + x.shape))


def any_process(flag: bool) -> bool:
  """Whether `flag` is True in any process (the same answer everywhere):
  decisions that lead to collectives, such as stopping to save a
  checkpoint, must be taken by all processes together."""
  if jax.process_count() == 1:
    return bool(flag)
  return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))


def over_replicas(
    fn: Callable[..., Any], num_replicas: int, in_axes
) -> Callable[..., Any]:
  """`fn` vectorized over stacked replicas; `fn` itself for one replica."""
  return fn if num_replicas == 1 else jax.vmap(fn, in_axes=in_axes)


def select_replica(
    inputs: dict[str, jax.Array], axes: dict[str, int | None], replica: int
) -> dict[str, jax.Array]:
  """One replica's view of inputs whose `axes` run over replicas."""
  return {
      name: x if axes[name] is None else jnp.take(x, replica, axes[name])
      for name, x in inputs.items()
  }


def stack(trees: list[PyTree]) -> PyTree:
  """One tree for one replica, else the replicas stacked on a new axis."""
  if len(trees) == 1:
    return trees[0]
  return jax.tree.map(lambda *xs: np.stack(xs), *trees)


def replica(tree: PyTree, index: int) -> PyTree:
  """One replica of a stacked tree."""
  return jax.tree.map(lambda x: x[index], tree)


def per_replica(tree: PyTree, num_replicas: int) -> list[PyTree]:
  """Host copies of each replica's slice of an (unstacked if 1) tree."""
  tree = jax.device_get(tree)
  if num_replicas == 1:
    return [tree]
  return [replica(tree, r) for r in range(num_replicas)]


def spread_replicas(tree: PyTree, num_replicas: int) -> PyTree:
  """Replicas stacked on axis 0, spread over the devices when their number
  divides the replicas (jit then runs each device's replicas on it, with no
  communication: they are independent); on the default device otherwise,
  committed to it as jit's outputs are (an uncommitted input compiles the
  first call once more for the second)."""
  if jax.device_count() == 1 or num_replicas % jax.device_count():
    return jax.device_put(tree, jax.devices()[0])
  return jax.device_put(
      tree, jax.sharding.NamedSharding(create_mesh(), P(AXIS))
  )
