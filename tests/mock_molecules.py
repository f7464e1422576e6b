"""Made-up ogbg-molpcba molecules served through tfds.testing.mock_data.

TFDS's own mock fills each feature with unrelated random values (edges that
point past the graph, features out of OGB's ranges), so the molecules are
made here: chains of 3 to MAX_ATOMS atoms with one ring bond, atom features
within OGB's ranges, both directions of every bond, and 128 labels of which
about a third are missing (NaN). Task t is positive when an atom has atomic
number feature t (t < 8) or at random otherwise, so the labels can be
learned. A split is the same molecules every time it is read.
"""

import contextlib
import re

import numpy as np
import tensorflow as tf

from input_pipeline import graphs
from tests import conftest

MAX_ATOMS = 12
NUM_TASKS = 128


def molecule(rng: np.random.Generator) -> dict[str, np.ndarray]:
  atoms = int(rng.integers(3, MAX_ATOMS + 1))
  features = np.stack(
      [
          rng.integers(0, min(size, 8), atoms)
          for size in graphs.ATOM_FEATURE_SIZES
      ],
      1,
  )
  bonds = [(i, i + 1) for i in range(atoms - 1)] + [(0, atoms - 1)]
  edges = np.array(bonds + [(j, i) for i, j in bonds], np.int64)
  labels = rng.integers(0, 2, NUM_TASKS).astype(np.float32)
  labels[:8] = np.isin(np.arange(8), features[:, 0])
  labels[rng.random(NUM_TASKS) < 0.3] = np.nan
  return {
      'num_nodes': np.array([atoms]),
      'node_feat': features.astype(np.float32),
      'num_edges': np.array([len(edges)]),
      'edge_feat': np.zeros((len(edges), 3), np.float32),
      'edge_index': edges,
      'labels': labels,
  }


def _split(split) -> tuple[str, int | None]:
  """(name, first N or None) of 'train', 'train[:N]' or an even split."""
  text = split if isinstance(split, str) else split.split
  match = re.fullmatch(r'(\w+)(?:\[:(\d+)\])?', str(text))
  return match.group(1), int(match.group(2)) if match.group(2) else None


@contextlib.contextmanager
def mock_molecules(num_examples: int):
  """Every ogbg_molpcba split holds `num_examples` made-up molecules."""

  def as_dataset(self, split, **kwargs):
    del self, kwargs
    name, first = _split(split)
    rng = np.random.default_rng(list(name.encode()))
    examples = [molecule(rng) for _ in range(num_examples)][:first]
    signature = {
        'num_nodes': tf.TensorSpec((None,), tf.int64),
        'node_feat': tf.TensorSpec((None, 9), tf.float32),
        'num_edges': tf.TensorSpec((None,), tf.int64),
        'edge_feat': tf.TensorSpec((None, 3), tf.float32),
        'edge_index': tf.TensorSpec((None, 2), tf.int64),
        'labels': tf.TensorSpec((NUM_TASKS,), tf.float32),
    }
    return tf.data.Dataset.from_generator(
        lambda: iter(examples), output_signature=signature
    )

  with conftest.mock_tfds(as_dataset_fn=as_dataset):
    yield
