"""Tiny datasets in their released formats, written by the tests: CoNLL-U
treebanks, MIT-BIH's CSV and TUDataset directories. Each is made so that a
network can learn it (tags follow the words, a beat's class its shape, a
graph's class its node labels), and each writer returns what it wrote, for
the parsing tests' expectations."""

import pathlib

import numpy as np

from input_pipeline import mitbih

# Words and their (fixed) tags: a tagger can learn them.
LEXICON = {
    'the': 'DET',
    'a': 'DET',
    'cat': 'NOUN',
    'dog': 'NOUN',
    'Paris': 'PROPN',
    'runs': 'VERB',
    'sees': 'VERB',
    'quickly': 'ADV',
    'big': 'ADJ',
    '.': 'PUNCT',
    'and': 'CCONJ',
    'in': 'ADP',
}


def sentences(count: int, seed: int) -> list[list[str]]:
  rng = np.random.default_rng(seed)
  words = sorted(LEXICON)
  return [
      [words[i] for i in rng.integers(0, len(words), rng.integers(2, 9))]
      for _ in range(count)
  ]


def write_conllu(path: pathlib.Path, count: int, seed: int) -> list[list[str]]:
  """A CoNLL-U file of `count` sentences, with comments, a multiword token
  and an empty node (which the reader skips); returns the sentences."""
  written = sentences(count, seed)
  lines = []
  for number, words in enumerate(written):
    lines += [f'# sent_id = s{number}', f'# text = {" ".join(words)}']
    if number == 0:  # A multiword token before the first word.
      lines.append(f'1-2\t{words[0]}{words[1]}\t_\t_\t_\t_\t_\t_\t_\t_')
    for i, word in enumerate(words, 1):
      lines.append(
          f'{i}\t{word}\t{word.lower()}\t{LEXICON[word]}\t_\t_\t0\tdep\t_\t_'
      )
      if number == 0 and i == 1:  # An empty node.
        lines.append('1.1\tgone\tgo\tVERB\t_\t_\t_\t_\t0:root\t_')
    lines.append('')
  path.write_text('\n'.join(lines) + '\n')
  return written


def write_treebank(directory: pathlib.Path, sizes=(60, 20, 24)) -> None:
  """en_ewt-ud-{train,dev,test}.conllu in `directory`."""
  directory.mkdir(parents=True, exist_ok=True)
  for seed, (split, size) in enumerate(zip(('train', 'dev', 'test'), sizes)):
    write_conllu(directory / f'en_ewt-ud-{split}.conllu', size, seed)


def beats(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """[count, 187] beats in [0, 1], zero-padded, and their classes: class c
  is a bump at step 20 + 30 c, plus noise."""
  rng = np.random.default_rng(seed)
  classes = rng.integers(0, mitbih.NUM_CLASSES, count)
  steps = np.arange(mitbih.LENGTH)
  x = np.exp(-0.5 * ((steps - 20 - 30 * classes[:, None]) / 6.0) ** 2)
  x = np.clip(x + 0.05 * rng.random(x.shape), 0, 1)
  lengths = rng.integers(120, mitbih.LENGTH + 1, count)
  x[steps >= lengths[:, None]] = 0
  return x.astype(np.float32), classes


def write_mitbih(directory: pathlib.Path, sizes=(200, 60)) -> None:
  directory.mkdir(parents=True, exist_ok=True)
  for seed, (file, size) in enumerate(zip(mitbih.FILES.values(), sizes)):
    x, y = beats(size, seed)
    table = np.concatenate([x, y[:, None].astype(np.float32)], 1)
    np.savetxt(directory / file, table, delimiter=',', fmt='%.18e')


def tu_graphs(count: int, seed: int):
  """[(node labels [v], undirected edges [(i, j)], class)]: class 1 when a
  graph has a node of label 2 (with labels 0..3)."""
  rng = np.random.default_rng(seed)
  made = []
  for _ in range(count):
    nodes = int(rng.integers(3, 9))
    labels = rng.integers(0, 4, nodes)
    edges = [(i, i + 1) for i in range(nodes - 1)]
    if nodes > 3:
      edges.append((0, nodes - 1))
    made.append((labels, edges, int(np.any(labels == 2))))
  return made


def write_tu(
    directory: pathlib.Path,
    name: str,
    count: int = 80,
    node_labels: bool = True,
    label_values=(-1, 1),
):
  """A TU directory `directory/name` of `count` graphs (graph labels written
  as `label_values`, node labels 1-based... as the files' own values);
  returns tu_graphs'."""
  made = tu_graphs(count, seed=0)
  folder = directory / name
  folder.mkdir(parents=True, exist_ok=True)
  a, indicator, graph_labels, labels_out, edge_labels = [], [], [], [], []
  first = 1
  for number, (labels, edges, cls) in enumerate(made, 1):
    indicator += [str(number)] * len(labels)
    labels_out += [str(label + 10) for label in labels]
    for i, j in edges:
      a += [f'{first + i}, {first + j}', f'{first + j}, {first + i}']
      edge_labels += ['1', '1']
    graph_labels.append(str(label_values[cls]))
    first += len(labels)
  write = lambda suffix, rows: (folder / f'{name}_{suffix}.txt').write_text(
      '\n'.join(rows) + '\n'
  )
  write('A', a)
  write('graph_indicator', indicator)
  write('graph_labels', graph_labels)
  write('edge_labels', edge_labels)
  if node_labels:
    write('node_labels', labels_out)
  return made
