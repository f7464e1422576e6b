"""Vision Transformer (Dosovitskiy et al., ICLR 2021) whose width is set by
`hidden_size`: the model SAM is best known for helping (Chen et al., 2022,
"When Vision Transformers Outperform ResNets without Pretraining or Strong
Data Augmentations")."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from models import transformer


class ViT(nn.Module):
  """Patches -> linear embedding (+ class token) + learned positions ->
  Encoder -> the class token's (or the tokens' mean) features -> Dense.

  The patch embedding is a Dense layer over each flattened patch, the same
  map and parameters as ViT's stride-`patch_size` convolution.
  """

  hidden_size: int
  depth: int
  patch_size: int
  num_heads: int
  mlp_dim: int
  num_classes: int
  pooling: str = 'cls'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train  # No batch-dependent layers.
    batch, height, width, channels = x.shape
    p = self.patch_size
    x = x.reshape(batch, height // p, p, width // p, p, channels)
    x = x.transpose(0, 1, 3, 2, 4, 5).reshape(batch, -1, p * p * channels)
    x = nn.Dense(self.hidden_size, name='embedding')(x)
    if self.pooling == 'cls':
      cls = self.param('cls', nn.initializers.zeros, (1, 1, self.hidden_size))
      x = jnp.concatenate(
          [jnp.broadcast_to(cls, (batch, 1, self.hidden_size)), x], axis=1
      )
    x = x + self.param(
        'pos_embedding',
        nn.initializers.normal(0.02),
        (1, x.shape[1], self.hidden_size),
    )
    x = transformer.Encoder(self.depth, self.num_heads, self.mlp_dim)(x)
    x = x[:, 0] if self.pooling == 'cls' else x.mean(axis=1)
    return nn.Dense(self.num_classes, name='head')(x)
