"""An LSTM text classifier (Hochreiter & Schmidhuber, 1997), the language
model of Shin et al.'s (2025) SST-2 experiment: word embeddings -> one
LSTM layer -> its state at each sentence's last word -> Dense. Width is
`hidden_size`, the LSTM's state, which the embeddings share (one knob
scales the whole network).

Flax's own recurrent modules (`nn.RNN` over `nn.OptimizedLSTMCell`, as in
Flax's sst2 example) run the cell over the words; `seq_lengths` stops each
sentence's carry at its true end, so the padding that follows a sentence
changes nothing (tests/test_sequence_models.py checks it).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from input_pipeline import text


class LSTMClassifier(nn.Module):
  """Token ids [b, t] (padding PAD at the end) -> logits [b, classes]."""

  vocab_size: int
  hidden_size: int
  num_classes: int

  @nn.compact
  def __call__(self, tokens: jax.Array, train: bool = True) -> jax.Array:
    del train  # No dropout or batch statistics.
    tokens = tokens.astype(jnp.int32)
    lengths = jnp.sum(tokens != text.PAD, axis=-1)
    x = nn.Embed(
        self.vocab_size,
        self.hidden_size,
        embedding_init=nn.initializers.normal(0.1),
        name='token_embedding',
    )(tokens)
    (_, last), _ = nn.RNN(
        nn.OptimizedLSTMCell(self.hidden_size, name='lstm'), return_carry=True
    )(x, seq_lengths=lengths)
    return nn.Dense(self.num_classes, name='head')(last)
