"""Graphs as fixed-size records, so a graph is one example like an image:
batches are gathered on device, padded and split over devices like any
other input, and nothing recompiles whatever the graphs' sizes.

A dataset's `Layout` says what its records hold: F categorical features per
node (`feature_sizes`, the number of values of each: OGB's 9 atom features,
or a TU dataset's one node label) and the node and edge budgets. A record
is an int16 vector of `layout.record_size` entries: the [max_nodes, F] node
features, then the [max_edges] senders and the [max_edges] receivers (node
indices within the graph, both directions of every undirected edge, as OGB
and TUDataset store them). Absent nodes and edges are PADDING. A graph with
more nodes or edges than the budgets is refused with the sizes that would
fit.
"""

from collections.abc import Iterable
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from configuration import config_util

PADDING = -1
# OGB's get_atom_feature_dims(): atomic number, chirality, degree, formal
# charge, hydrogens, radical electrons, hybridization, aromatic, in a ring.
ATOM_FEATURE_SIZES = (119, 5, 12, 12, 10, 6, 6, 2, 2)
# Budgets and feature values are stored as int16.
MAX_BUDGET = np.iinfo(np.int16).max


class GraphTooLargeError(config_util.ConfigError):
  """A graph does not fit the configured node or edge budget."""


@dataclasses.dataclass(frozen=True)
class Layout:
  """What a dataset's records hold (see the module docstring)."""

  feature_sizes: tuple[int, ...]
  max_nodes: int
  max_edges: int

  @property
  def num_features(self) -> int:
    return len(self.feature_sizes)

  @property
  def record_size(self) -> int:
    return self.max_nodes * self.num_features + 2 * self.max_edges


def pack(
    graphs: Iterable[tuple[np.ndarray, np.ndarray]], layout: Layout
) -> np.ndarray:
  """int16 [n, layout.record_size] records of (node features [v, F], edge
  index [e, 2] as (sender, receiver)) pairs."""
  graphs = list(graphs)
  largest = (
      max((len(f) for f, _ in graphs), default=0),
      max((len(e) for _, e in graphs), default=0),
  )
  max_nodes, max_edges = layout.max_nodes, layout.max_edges
  if largest[0] > max_nodes or largest[1] > max_edges:
    raise GraphTooLargeError(
        f'the largest graph has {largest[0]} nodes and {largest[1]} edges, '
        f'more than max_nodes={max_nodes} or max_edges={max_edges}: raise '
        'them to at least those sizes'
    )
  records = np.full((len(graphs), layout.record_size), PADDING, np.int16)
  features_end = max_nodes * layout.num_features
  for record, (features, edges) in zip(records, graphs):
    features = np.asarray(features).astype(np.int64)
    if features.size and (
        features.min() < 0 or np.any(features.max(0) >= layout.feature_sizes)
    ):
      raise ValueError(
          f'node features outside their ranges '
          f'{layout.feature_sizes}: {features.max(0)}'
      )
    record[: features.size] = features.ravel()
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    record[features_end : features_end + len(edges)] = edges[:, 0]
    record[features_end + max_edges : features_end + max_edges + len(edges)] = (
        edges[:, 1]
    )
  return records


def unpack(
    records: jax.Array, layout: Layout
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(node features [b, max_nodes, F], senders [b, max_edges], receivers
  [b, max_edges]) as int32, PADDING where absent."""
  records = records.astype(jnp.int32)
  features_end = layout.max_nodes * layout.num_features
  features = records[:, :features_end].reshape(
      -1, layout.max_nodes, layout.num_features
  )
  senders = records[:, features_end : features_end + layout.max_edges]
  receivers = records[:, features_end + layout.max_edges :]
  return features, senders, receivers
