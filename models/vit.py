"""Vision Transformer (Dosovitskiy et al., ICLR 2021) whose width is set by
`hidden_size`: the model SAM is best known for helping (Chen et al., 2022,
"When Vision Transformers Outperform ResNets without Pretraining or Strong
Data Augmentations")."""

import flax.linen as nn
import jax

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
    return transformer.classify_tokens(
        self,
        x,
        depth=self.depth,
        num_heads=self.num_heads,
        mlp_dim=self.mlp_dim,
        num_classes=self.num_classes,
        pooling=self.pooling,
    )
