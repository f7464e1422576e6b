"""The pre-LayerNorm Transformer encoder (Vaswani et al., 2017, with the
LayerNorm before each sublayer as in ViT), shared by every Transformer of
the registry.

Width is `hidden_size`; unless given, the heads and the MLP follow ViT's
ratios: one head per HEAD_DIM features and an MLP of MLP_RATIO x hidden_size
(ViT-Ti/S/B: 192/384/768 wide, 3/6/12 heads, MLP 768/1536/3072).
"""

import flax.linen as nn
import jax

HEAD_DIM = 64
MLP_RATIO = 4
# What feeds a classifier: a class token's features or the tokens' mean.
POOLINGS = ('cls', 'mean')
# ViT's LayerNorm epsilon.
_EPSILON = 1e-6


def num_heads(hidden_size: int, heads: int = 0) -> int:
  """`heads`, or hidden_size / HEAD_DIM (at least 1) when it is 0."""
  return heads or max(1, hidden_size // HEAD_DIM)


class EncoderBlock(nn.Module):
  """x + Attention(LN(x)), then x + MLP(LN(x)) with a GELU MLP."""

  num_heads: int
  mlp_dim: int

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    y = nn.LayerNorm(epsilon=_EPSILON)(x)
    y = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, kernel_init=nn.initializers.xavier_uniform()
    )(y, y, mask=mask)
    x = x + y
    y = nn.LayerNorm(epsilon=_EPSILON)(x)
    y = nn.Dense(self.mlp_dim, kernel_init=nn.initializers.xavier_uniform())(y)
    y = nn.Dense(x.shape[-1], kernel_init=nn.initializers.xavier_uniform())(
        nn.gelu(y)
    )
    return x + y


class Encoder(nn.Module):
  """`depth` EncoderBlocks and a final LayerNorm, over (batch, tokens,
  hidden_size). `mask` (batch, 1, tokens, tokens), True where a token may
  attend to another, keeps padding out of attention."""

  depth: int
  num_heads: int
  mlp_dim: int

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    for _ in range(self.depth):
      x = EncoderBlock(self.num_heads, self.mlp_dim)(x, mask)
    return nn.LayerNorm(epsilon=_EPSILON)(x)
