"""Molecular graphs as fixed-size records, so a graph is one example like an
image: batches are gathered on device, padded and split over devices like
any other input, and nothing recompiles whatever the graphs' sizes.

A record is an int16 vector of `record_size(max_nodes, max_edges)` entries:
the [max_nodes, 9] atom features (OGB's categorical encoding, one column per
ATOM_FEATURE_SIZES entry), then the [max_edges] senders and the [max_edges]
receivers (node indices within the graph, both directions of every bond, as
OGB stores them). Absent nodes and edges are PADDING. A graph with more
nodes or edges than the budgets is refused with the sizes that would fit.
"""

from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from configuration import config_util

PADDING = -1
# OGB's get_atom_feature_dims(): atomic number, chirality, degree, formal
# charge, hydrogens, radical electrons, hybridization, aromatic, in a ring.
ATOM_FEATURE_SIZES = (119, 5, 12, 12, 10, 6, 6, 2, 2)
NUM_ATOM_FEATURES = len(ATOM_FEATURE_SIZES)
# Budgets are stored as int16 node indices.
MAX_BUDGET = np.iinfo(np.int16).max


class GraphTooLargeError(config_util.ConfigError):
  """A graph does not fit the configured node or edge budget."""


def record_size(max_nodes: int, max_edges: int) -> int:
  return max_nodes * NUM_ATOM_FEATURES + 2 * max_edges


def pack(
    graphs: Iterable[tuple[np.ndarray, np.ndarray]],
    max_nodes: int,
    max_edges: int,
) -> np.ndarray:
  """int16 [n, record_size] records of (atom features [v, 9], edge index
  [e, 2] as (sender, receiver)) pairs."""
  graphs = list(graphs)
  largest = (
      max((len(f) for f, _ in graphs), default=0),
      max((len(e) for _, e in graphs), default=0),
  )
  if largest[0] > max_nodes or largest[1] > max_edges:
    raise GraphTooLargeError(
        f'the largest graph has {largest[0]} nodes and {largest[1]} edges, '
        f'more than max_nodes={max_nodes} or max_edges={max_edges}: raise '
        'them to at least those sizes'
    )
  records = np.full(
      (len(graphs), record_size(max_nodes, max_edges)), PADDING, np.int16
  )
  features_end = max_nodes * NUM_ATOM_FEATURES
  for record, (features, edges) in zip(records, graphs):
    features = np.asarray(features).astype(np.int64)
    if features.size and (
        features.min() < 0 or np.any(features.max(0) >= ATOM_FEATURE_SIZES)
    ):
      raise ValueError(
          f"atom features outside OGB's ranges "
          f'{ATOM_FEATURE_SIZES}: {features.max(0)}'
      )
    record[: features.size] = features.ravel()
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    record[features_end : features_end + len(edges)] = edges[:, 0]
    record[features_end + max_edges : features_end + max_edges + len(edges)] = (
        edges[:, 1]
    )
  return records


def unpack(
    records: jax.Array, max_nodes: int, max_edges: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(atom features [b, max_nodes, 9], senders [b, max_edges], receivers
  [b, max_edges]) as int32, PADDING where absent."""
  records = records.astype(jnp.int32)
  features_end = max_nodes * NUM_ATOM_FEATURES
  features = records[:, :features_end].reshape(-1, max_nodes, NUM_ATOM_FEATURES)
  senders = records[:, features_end : features_end + max_edges]
  receivers = records[:, features_end + max_edges :]
  return features, senders, receivers
