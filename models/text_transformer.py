"""Transformer text classifier: the ViT's encoder over word embeddings,
whose width is set by `hidden_size`, as in the language experiments of
Shin et al. (2025)."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from input_pipeline import text
from models import transformer


class TextTransformer(nn.Module):
  """Token ids -> embedding (+ class token) + learned positions -> Encoder
  -> the class token's (or the words' mean) features -> Dense.

  Padding (id 0) counts for nothing: no token attends to it and the mean
  leaves it out, so a text's logits do not depend on how much padding
  follows it. The positions table has one row per token of the longest
  input (`max_length`); shorter inputs use its first rows.
  """

  vocab_size: int
  max_length: int
  hidden_size: int
  depth: int
  num_heads: int
  mlp_dim: int
  num_classes: int
  pooling: str = 'cls'

  @nn.compact
  def __call__(self, tokens: jax.Array, train: bool = True) -> jax.Array:
    del train  # No batch-dependent layers.
    # Initialization traces the model with float zeros.
    tokens = tokens.astype(jnp.int32)
    batch = tokens.shape[0]
    valid = tokens != text.PAD
    x = nn.Embed(
        self.vocab_size,
        self.hidden_size,
        embedding_init=nn.initializers.normal(0.02),
        name='token_embedding',
    )(tokens)
    if self.pooling == 'cls':
      cls = self.param('cls', nn.initializers.zeros, (1, 1, self.hidden_size))
      x = jnp.concatenate(
          [jnp.broadcast_to(cls, (batch, 1, self.hidden_size)), x], axis=1
      )
      valid = jnp.concatenate([jnp.ones((batch, 1), bool), valid], axis=1)
    positions = self.param(
        'pos_embedding',
        nn.initializers.normal(0.02),
        (1, self.max_length + (self.pooling == 'cls'), self.hidden_size),
    )
    x = x + positions[:, : x.shape[1]]
    x = transformer.Encoder(self.depth, self.num_heads, self.mlp_dim)(
        x, nn.make_attention_mask(valid, valid)
    )
    if self.pooling == 'cls':
      x = x[:, 0]
    else:
      weights = valid[..., None].astype(x.dtype)
      x = (x * weights).sum(axis=1) / jnp.maximum(weights.sum(axis=1), 1.0)
    return nn.Dense(self.num_classes, name='head')(x)
