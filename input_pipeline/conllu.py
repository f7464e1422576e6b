"""Part-of-speech tagging on Universal Dependencies treebanks, read from
their CoNLL-U files as released (https://universaldependencies.org/format.html):
`dataset='ud_en_ewt'` reads `en_ewt-ud-train.conllu`, `en_ewt-ud-dev.conllu`
and `en_ewt-ud-test.conllu` (English Web Treebank, Silveira et al., 2014)
from data_dir, from https://github.com/UniversalDependencies/UD_English-EWT.

A sentence is its lines between blank lines; `#` lines are comments. Each
word line has 10 tab-separated fields, of which the tagger reads FORM (the
word, case kept) and UPOS (one of the 17 universal tags, UPOS_TAGS).
Multiword-token lines (ID `1-2`) and empty nodes (ID `8.1`) carry no UPOS
of their own and are skipped, as UD's evaluation does. The dev file is the
validation split (`validation_fraction` stays 0).
"""

import functools
import pathlib

import ml_collections
import numpy as np

from input_pipeline import spec as spec_lib

UPOS_TAGS = (
    'ADJ',
    'ADP',
    'ADV',
    'AUX',
    'CCONJ',
    'DET',
    'INTJ',
    'NOUN',
    'NUM',
    'PART',
    'PRON',
    'PROPN',
    'PUNCT',
    'SCONJ',
    'SYM',
    'VERB',
    'X',
)
_TAG_IDS = {tag: i for i, tag in enumerate(UPOS_TAGS)}
TREEBANKS = {'ud_en_ewt': 'en_ewt'}
SPLITS = {'train': 'train', 'validation': 'dev', 'test': 'test'}
DOWNLOAD = (
    'git clone https://github.com/UniversalDependencies/UD_English-EWT and '
    'set data_dir to it'
)


def parse(path: pathlib.Path) -> tuple[list[tuple[str, ...]], list[np.ndarray]]:
  """(sentences as tuples of words, their int32 UPOS ids) of a CoNLL-U
  file; DataFileError naming the line of anything else."""
  sentences, tags = [], []
  words, word_tags = [], []
  with open(path, encoding='utf-8') as f:
    for number, line in enumerate(f, 1):
      line = line.rstrip('\n')
      if not line.strip():
        if words:
          sentences.append(tuple(words))
          tags.append(np.array(word_tags, np.int32))
          words, word_tags = [], []
        continue
      if line.startswith('#'):
        continue
      fields = line.split('\t')
      if len(fields) != 10:
        raise spec_lib.malformed(
            path, number, '10 tab-separated fields (CoNLL-U)', line
        )
      if '-' in fields[0] or '.' in fields[0]:
        continue  # A multiword token or an empty node.
      if fields[3] not in _TAG_IDS:
        raise spec_lib.malformed(
            path, number, f'a UPOS tag ({", ".join(UPOS_TAGS)})', fields[3]
        )
      words.append(fields[1])
      word_tags.append(_TAG_IDS[fields[3]])
  if words:
    sentences.append(tuple(words))
    tags.append(np.array(word_tags, np.int32))
  if not sentences:
    raise spec_lib.DataFileError(f'{path} holds no sentence')
  return sentences, tags


@functools.cache
def _parsed(path: pathlib.Path, stamp: int):
  del stamp  # The modification time: an edited file is read again.
  return parse(path)


def read(config: ml_collections.ConfigDict, split: str) -> spec_lib.Split:
  """A whole split ('train', 'validation' or 'test'): sentences as tuples
  of words, and their tags, both as object arrays (`sources` encodes
  them)."""
  file = f'{TREEBANKS[config.dataset]}-ud-{SPLITS[split]}.conllu'
  path = spec_lib.data_file(config, file, DOWNLOAD)
  sentences, tags = _parsed(path, path.stat().st_mtime_ns)
  images = np.empty(len(sentences), object)
  images[:] = sentences
  labels = np.empty(len(tags), object)
  labels[:] = tags
  return spec_lib.Split(images, labels)
