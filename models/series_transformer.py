"""A Transformer classifier of time series (the heartbeat Transformer of
the EPFL report): each patch of `patch_size` consecutive steps is embedded
by one Dense layer (patch_size 1: every step is a token), then the ViT's
classifier (class token or mean pooling, learned positions, the shared
encoder). Width is `hidden_size`.

A series whose length is not a multiple of patch_size is zero-padded at
its end to the next multiple, as MIT-BIH's beats already are to their 187
steps.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from models import transformer


class SeriesTransformer(nn.Module):
  """Series [b, steps] (or [b, steps, channels]) -> logits [b, classes]."""

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
    if x.ndim == 2:
      x = x[..., None]
    batch, steps, channels = x.shape
    p = self.patch_size
    x = jnp.pad(x, ((0, 0), (0, -steps % p), (0, 0)))
    x = x.reshape(batch, -1, p * channels)
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
