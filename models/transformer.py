"""The pre-LayerNorm Transformer encoder (Vaswani et al., 2017, with the
LayerNorm before each sublayer as in ViT), shared by every Transformer of
the registry.

Width is `hidden_size`; unless given, the heads and the MLP follow ViT's
ratios: one head per HEAD_DIM features and an MLP of MLP_RATIO x hidden_size
(ViT-Ti/S/B: 192/384/768 wide, 3/6/12 heads, MLP 768/1536/3072).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

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


def classify_tokens(
    module: nn.Module,
    x: jax.Array,
    *,
    depth: int,
    num_heads: int,
    mlp_dim: int,
    num_classes: int,
    pooling: str,
) -> jax.Array:
  """Embedded tokens [b, t, hidden] (+ class token) + learned positions ->
  Encoder -> the class token's (or the tokens' mean) features -> Dense:
  the classifier of the ViT and of the time-series Transformer, whose
  inputs have no padding. Called inside `module`'s compact method, whose
  parameters ('cls', 'pos_embedding', 'Encoder_0', 'head') these are."""
  batch, _, hidden_size = x.shape
  if pooling == 'cls':
    cls = module.param('cls', nn.initializers.zeros, (1, 1, hidden_size))
    x = jnp.concatenate(
        [jnp.broadcast_to(cls, (batch, 1, hidden_size)), x], axis=1
    )
  x = x + module.param(
      'pos_embedding',
      nn.initializers.normal(0.02),
      (1, x.shape[1], hidden_size),
  )
  x = Encoder(depth, num_heads, mlp_dim)(x)
  x = x[:, 0] if pooling == 'cls' else x.mean(axis=1)
  return nn.Dense(num_classes, name='head')(x)
