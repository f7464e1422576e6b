"""Word-level tokenization of text datasets, without a tokenizer package.

A text is lower-cased, stripped of HTML line breaks (IMDB's `<br />`) and
split into runs of letters, digits and apostrophes; a sentence that comes
split into words (a treebank's, a tuple of words) is taken as it is, case
and punctuation kept. The vocabulary is built
from the training examples a run trains on: id 0 pads, id 1 stands for any
word outside the vocabulary, and ids 2, 3, ... are the `size - 2` most
frequent words (ties broken alphabetically, so the vocabulary is a function
of the examples alone). Every text becomes `max_length` ids: longer texts are
truncated, shorter ones padded with 0, which the models mask out. A
tagged sentence's tags are truncated and padded alike, with PAD_TAG, which
the tagging task leaves out.
"""

import collections
from collections.abc import Iterable
import re

import numpy as np

PAD = 0
UNKNOWN = 1
PAD_TAG = -1
# A text: raw (bytes or str), or already split into words.
Text = str | bytes | tuple[str, ...]
_BREAK = re.compile(r'<br\s*/?>')
_WORD = re.compile(r"[a-z0-9']+")


def words(text: Text) -> list[str]:
  """The words of `text` in order: a raw text's lower-cased, a split one's
  as they are."""
  if isinstance(text, tuple):
    return list(text)
  if isinstance(text, bytes):
    text = text.decode('utf-8', errors='replace')
  return _WORD.findall(_BREAK.sub(' ', text.lower()))


def build_vocabulary(texts: Iterable[Text], size: int) -> dict[str, int]:
  """Maps the `size - 2` most frequent words of `texts` to ids 2, 3, ..."""
  counts = collections.Counter()
  for text in texts:
    counts.update(words(text))
  ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
  return {
      word: UNKNOWN + 1 + i for i, (word, _) in enumerate(ranked[: size - 2])
  }


def encode(
    texts: Iterable[Text], vocabulary: dict[str, int], max_length: int
) -> np.ndarray:
  """int32 [n, max_length] token ids: truncated, padded with PAD."""
  texts = list(texts)
  ids = np.full((len(texts), max_length), PAD, np.int32)
  for row, text in enumerate(texts):
    tokens = [vocabulary.get(w, UNKNOWN) for w in words(text)[:max_length]]
    ids[row, : len(tokens)] = tokens
  return ids


def encode_tags(tags: Iterable[np.ndarray], max_length: int) -> np.ndarray:
  """int32 [n, max_length] tags of each word: truncated, padded with
  PAD_TAG."""
  tags = list(tags)
  ids = np.full((len(tags), max_length), PAD_TAG, np.int32)
  for row, sentence in enumerate(tags):
    ids[row, : min(len(sentence), max_length)] = sentence[:max_length]
  return ids
