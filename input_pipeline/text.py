"""Word-level tokenization of text datasets, without a tokenizer package.

A text is lower-cased, stripped of HTML line breaks (IMDB's `<br />`) and
split into runs of letters, digits and apostrophes. The vocabulary is built
from the training examples a run trains on: id 0 pads, id 1 stands for any
word outside the vocabulary, and ids 2, 3, ... are the `size - 2` most
frequent words (ties broken alphabetically, so the vocabulary is a function
of the examples alone). Every text becomes `max_length` ids: longer texts are
truncated, shorter ones padded with 0, which the models mask out.
"""

import collections
from collections.abc import Iterable
import re

import numpy as np

PAD = 0
UNKNOWN = 1
_BREAK = re.compile(r'<br\s*/?>')
_WORD = re.compile(r"[a-z0-9']+")


def words(text: str | bytes) -> list[str]:
  """The words of `text`, lower-cased, in order."""
  if isinstance(text, bytes):
    text = text.decode('utf-8', errors='replace')
  return _WORD.findall(_BREAK.sub(' ', text.lower()))


def build_vocabulary(texts: Iterable[str | bytes], size: int) -> dict[str, int]:
  """Maps the `size - 2` most frequent words of `texts` to ids 2, 3, ..."""
  counts = collections.Counter()
  for text in texts:
    counts.update(words(text))
  ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
  return {
      word: UNKNOWN + 1 + i for i, (word, _) in enumerate(ranked[: size - 2])
  }


def encode(
    texts: Iterable[str | bytes], vocabulary: dict[str, int], max_length: int
) -> np.ndarray:
  """int32 [n, max_length] token ids: truncated, padded with PAD."""
  texts = list(texts)
  ids = np.full((len(texts), max_length), PAD, np.int32)
  for row, text in enumerate(texts):
    tokens = [vocabulary.get(w, UNKNOWN) for w in words(text)[:max_length]]
    ids[row, : len(tokens)] = tokens
  return ids
