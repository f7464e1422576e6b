"""Graph classification sets of TUDataset (Morris et al., 2020), read from
the text files of https://chrsmrrs.github.io/datasets/ as released:
`dataset='tu/NAME'` reads the directory `data_dir/NAME`, unzipped from
https://www.chrsmrrs.com/graphkerneldatasets/NAME.zip.

The files (n nodes, m directed edges, N graphs over the whole set; ids are
1-based):

* `NAME_A.txt`: m lines `i, j`, an edge from node i to node j (both
  directions of an undirected edge are listed);
* `NAME_graph_indicator.txt`: n lines, the graph of each node;
* `NAME_graph_labels.txt`: N lines, the class of each graph;
* `NAME_node_labels.txt` (optional): n lines, each node's label;
* `NAME_edge_labels.txt`, `NAME_edge_attributes.txt`,
  `NAME_node_attributes.txt` (optional): checked to have a line per edge or
  node, and not used: the GCN reads node labels, as in Kipf & Welling's
  and the TU benchmarks' GCN baselines.

Graph labels (whatever their values, e.g. -1 and 1) become classes 0, 1,
... in sorted order, node labels likewise; a set without node labels gives
every node the same one. Each node's label is its one categorical feature
(graphs.Layout with feature_sizes = (number of node labels,)), which the
GCN embeds: the one-hot label times a matrix. The budgets are the largest
graph's, so every graph fits.

TU sets have no test split: a fraction `config.test_fraction` of the
graphs, drawn with the fixed SPLIT_SEED (the same for every run, seed and
optimizer), is the test split; validation_fraction is then held out of the
rest, as for any dataset.
"""

import dataclasses
import functools
import pathlib

import ml_collections
import numpy as np

from input_pipeline import graphs
from input_pipeline import spec as spec_lib
import tasks

PREFIX = 'tu/'
KEYS = ('test_fraction',)
SPLIT_SEED = 0
DOWNLOAD = (
    'unzip https://www.chrsmrrs.com/graphkerneldatasets/{name}.zip into '
    'data_dir'
)


@dataclasses.dataclass(frozen=True)
class Graphs:
  """A whole TU set: per graph, its node labels [v] and edges [e, 2] (node
  indices within the graph), and its class."""

  node_labels: tuple[np.ndarray, ...]
  edges: tuple[np.ndarray, ...]
  classes: np.ndarray
  num_classes: int
  num_node_labels: int

  def layout(self) -> graphs.Layout:
    return graphs.Layout(
        (self.num_node_labels,),
        max(map(len, self.node_labels)),
        max(max(map(len, self.edges)), 1),
    )


def name(config: ml_collections.ConfigDict) -> str:
  return config.dataset[len(PREFIX) :]


def _integers(path: pathlib.Path, columns: int) -> np.ndarray:
  """int64 [lines, columns] of a file of comma-separated integers."""
  rows = []
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      fields = line.split(',')
      try:
        if len(fields) != columns:
          raise ValueError
        rows.append([int(x) for x in fields])
      except ValueError:
        raise spec_lib.malformed(
            path, number, f'{columns} comma-separated integers', line.strip()
        ) from None
  return np.array(rows, np.int64).reshape(-1, columns)


def _count_lines(path: pathlib.Path) -> int:
  with open(path) as f:
    return sum(1 for line in f if line.strip())


def _check_count(path: pathlib.Path, count: int, expected: int, what: str):
  if count != expected:
    raise spec_lib.DataFileError(
        f'{path} has {count} lines, expected {expected} (one per {what})'
    )


@functools.cache
def _read_directory(directory: pathlib.Path, stamp) -> Graphs:
  """The set in `directory` (`stamp`: the files' modification times, so
  an edited file is read again)."""
  del stamp
  prefix = directory / directory.name
  indicator = _integers(pathlib.Path(f'{prefix}_graph_indicator.txt'), 1)[:, 0]
  labels_path = pathlib.Path(f'{prefix}_graph_labels.txt')
  graph_labels = _integers(labels_path, 1)[:, 0]
  edges = _integers(pathlib.Path(f'{prefix}_A.txt'), 2) - 1
  n, num_graphs = len(indicator), len(graph_labels)
  if n == 0 or np.any(np.diff(indicator) < 0) or indicator[0] != 1:
    raise spec_lib.DataFileError(
        f'{prefix}_graph_indicator.txt must list graph ids 1, 2, ... in '
        'non-decreasing order, a line per node'
    )
  if indicator[-1] != num_graphs:
    raise spec_lib.DataFileError(
        f'{prefix}_graph_indicator.txt names {indicator[-1]} graphs but '
        f'{labels_path} has {num_graphs} labels'
    )
  bad = np.flatnonzero((edges < 0) | (edges >= n))
  if bad.size:
    raise spec_lib.malformed(
        f'{prefix}_A.txt',
        bad[0] // 2 + 1,
        f'node ids in [1, {n}]',
        str(edges[bad[0] // 2] + 1),
    )
  graph_of = indicator - 1
  across = np.flatnonzero(graph_of[edges[:, 0]] != graph_of[edges[:, 1]])
  if across.size:
    raise spec_lib.malformed(
        f'{prefix}_A.txt',
        across[0] + 1,
        'an edge between nodes of one graph',
        str(edges[across[0]] + 1),
    )
  node_labels_path = pathlib.Path(f'{prefix}_node_labels.txt')
  if node_labels_path.exists():
    raw = _integers(node_labels_path, 1)[:, 0]
    _check_count(node_labels_path, len(raw), n, 'node')
    values, node_labels = np.unique(raw, return_inverse=True)
  else:
    values, node_labels = np.zeros(1), np.zeros(n, np.int64)
  for suffix, count, what in (
      ('edge_labels', len(edges), 'edge'),
      ('edge_attributes', len(edges), 'edge'),
      ('node_attributes', n, 'node'),
  ):
    path = pathlib.Path(f'{prefix}_{suffix}.txt')
    if path.exists():
      _check_count(path, _count_lines(path), count, what)
  classes, graph_classes = np.unique(graph_labels, return_inverse=True)
  # Nodes of graph g are the contiguous range starts[g]:starts[g + 1].
  starts = np.searchsorted(graph_of, np.arange(num_graphs + 1))
  edge_graph = graph_of[edges[:, 0]]
  order = np.argsort(edge_graph, kind='stable')
  edge_starts = np.searchsorted(edge_graph[order], np.arange(num_graphs + 1))
  return Graphs(
      node_labels=tuple(
          node_labels[starts[g] : starts[g + 1]] for g in range(num_graphs)
      ),
      edges=tuple(
          edges[order[edge_starts[g] : edge_starts[g + 1]]] - starts[g]
          for g in range(num_graphs)
      ),
      classes=graph_classes.astype(np.int32),
      num_classes=len(classes),
      num_node_labels=len(values),
  )


def read_graphs(config: ml_collections.ConfigDict) -> Graphs:
  """The set `config.dataset` names, from `config.data_dir`."""
  set_name = name(config)
  download = DOWNLOAD.format(name=set_name)
  # An absent data_dir, directory or file: one line saying where to get it.
  for suffix in ('A', 'graph_indicator', 'graph_labels'):
    spec_lib.data_file(config, f'{set_name}/{set_name}_{suffix}.txt', download)
  directory = pathlib.Path(config.data_dir).expanduser() / set_name
  stamp = tuple(
      (p.name, p.stat().st_mtime_ns) for p in sorted(directory.glob('*.txt'))
  )
  return _read_directory(directory, stamp)


def in_test_split(count: int, fraction: float) -> np.ndarray:
  """Whether each of `count` graphs is in the test split (round(fraction *
  count) of them, drawn with SPLIT_SEED)."""
  return spec_lib.fixed_subset(count, fraction, SPLIT_SEED)


def read(config: ml_collections.ConfigDict, split: str) -> spec_lib.Split:
  """The whole 'train' or 'test' split, as graph records and classes."""
  data = read_graphs(config)
  layout = data.layout()
  in_split = in_test_split(len(data.classes), config.test_fraction) == (
      split == 'test'
  )
  chosen = np.flatnonzero(in_split)
  records = graphs.pack(
      ((data.node_labels[g][:, None], data.edges[g]) for g in chosen), layout
  )
  return spec_lib.Split(records, data.classes[chosen])


def spec(config: ml_collections.ConfigDict) -> spec_lib.DatasetSpec:
  """The DatasetSpec of `config.dataset` ('tu/NAME'), from its files."""
  data = read_graphs(config)
  return spec_lib.DatasetSpec(
      num_classes=data.num_classes,
      inputs='graphs',
      task=tasks.TASKS['classification'],
      keys=KEYS,
      reader=read,
      graph_layout=data.layout(),
      download=DOWNLOAD.format(name=name(config)),
  )
