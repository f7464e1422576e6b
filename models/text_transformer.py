"""Transformers over words, whose width is set by `hidden_size`, as in the
language experiments of Shin et al. (2025): a text classifier
(`TextTransformer`) and a part-of-speech tagger (`TransformerTagger`, a
tag per word, as in Flax's nlp_seq example).

Padding (id 0) counts for nothing: no token attends to it and the mean
leaves it out, so a text's logits (a word's tags) do not depend on how much
padding follows it. The positions table has one row per token of the
longest input (`max_length`); shorter inputs use its first rows.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from input_pipeline import text
from models import transformer


def _encode(
    module: nn.Module, tokens: jax.Array, class_token: bool
) -> tuple[jax.Array, jax.Array]:
  """(encoded tokens [b, t, hidden_size], which are words [b, t]): token
  ids -> embedding (+ class token) + learned positions -> Encoder, padding
  masked. Called inside `module`'s compact method (its parameters)."""
  # Initialization traces the model with float zeros.
  tokens = tokens.astype(jnp.int32)
  batch, hidden_size = tokens.shape[0], module.hidden_size
  valid = tokens != text.PAD
  x = nn.Embed(
      module.vocab_size,
      hidden_size,
      embedding_init=nn.initializers.normal(0.02),
      name='token_embedding',
  )(tokens)
  if class_token:
    cls = module.param('cls', nn.initializers.zeros, (1, 1, hidden_size))
    x = jnp.concatenate(
        [jnp.broadcast_to(cls, (batch, 1, hidden_size)), x], axis=1
    )
    valid = jnp.concatenate([jnp.ones((batch, 1), bool), valid], axis=1)
  positions = module.param(
      'pos_embedding',
      nn.initializers.normal(0.02),
      (1, module.max_length + class_token, hidden_size),
  )
  x = x + positions[:, : x.shape[1]]
  x = transformer.Encoder(module.depth, module.num_heads, module.mlp_dim)(
      x, nn.make_attention_mask(valid, valid)
  )
  return x, valid


class TextTransformer(nn.Module):
  """Token ids -> encoded tokens -> the class token's (or the words' mean)
  features -> Dense: logits [b, num_classes]."""

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
    x, valid = _encode(self, tokens, class_token=self.pooling == 'cls')
    if self.pooling == 'cls':
      x = x[:, 0]
    else:
      weights = valid[..., None].astype(x.dtype)
      x = (x * weights).sum(axis=1) / jnp.maximum(weights.sum(axis=1), 1.0)
    return nn.Dense(self.num_classes, name='head')(x)


class TransformerTagger(nn.Module):
  """Token ids -> encoded tokens -> Dense per token: logits [b, t,
  num_classes] (those of padding positions are left out by the task)."""

  vocab_size: int
  max_length: int
  hidden_size: int
  depth: int
  num_heads: int
  mlp_dim: int
  num_classes: int

  @nn.compact
  def __call__(self, tokens: jax.Array, train: bool = True) -> jax.Array:
    del train  # No batch-dependent layers.
    x, _ = _encode(self, tokens, class_token=False)
    return nn.Dense(self.num_classes, name='head')(x)
