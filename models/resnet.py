"""ResNets whose width is set by `num_filters` (He et al., 2016).

Two families, as in the SAM literature:

* CIFAR-style ResNet-18/34: a 3x3 stride-1 stem (no max-pool), four stages of
  basic blocks with widths num_filters x (1, 2, 4, 8).
* ImageNet-style ResNet-50: a 7x7 stride-2 stem and 3x3 max-pool, four stages
  of bottleneck blocks (expansion 4, stride on the 3x3 conv: "v1.5").

Both end in global average pooling, so any input size works. Padding is
explicit (1 for 3x3 convs) rather than 'SAME', so a stride-2 conv sees the same
pixels as in the PyTorch reference implementations.
"""

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ModuleDef = Any

conv3x3 = functools.partial(
    nn.Conv, kernel_size=(3, 3), padding=((1, 1), (1, 1)), use_bias=False)
conv1x1 = functools.partial(
    nn.Conv, kernel_size=(1, 1), padding='VALID', use_bias=False)


class BasicBlock(nn.Module):
  """Two 3x3 convs; a 1x1 projection shortcut where the shape changes."""

  filters: int
  strides: int
  norm: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    residual = x
    y = conv3x3(self.filters, strides=self.strides)(x)
    y = nn.relu(self.norm()(y))
    y = conv3x3(self.filters)(y)
    y = self.norm()(y)
    if residual.shape != y.shape:
      residual = conv1x1(self.filters, strides=self.strides,
                         name='conv_proj')(residual)
      residual = self.norm(name='norm_proj')(residual)
    return nn.relu(residual + y)


class BottleneckBlock(nn.Module):
  """1x1 reduce, 3x3 (strided), 1x1 expand by 4; projection where needed."""

  filters: int
  strides: int
  norm: ModuleDef
  expansion: int = 4

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    residual = x
    y = nn.relu(self.norm()(conv1x1(self.filters)(x)))
    y = nn.relu(self.norm()(conv3x3(self.filters, strides=self.strides)(y)))
    y = conv1x1(self.filters * self.expansion)(y)
    # Zero-init of the last scale makes each block start as the identity
    # (Goyal et al., 2017), as in Flax's ImageNet example.
    y = self.norm(scale_init=nn.initializers.zeros)(y)
    if residual.shape != y.shape:
      residual = conv1x1(self.filters * self.expansion, strides=self.strides,
                         name='conv_proj')(residual)
      residual = self.norm(name='norm_proj')(residual)
    return nn.relu(residual + y)


class ResNet(nn.Module):
  """ResNet v1 with a CIFAR (3x3) or ImageNet (7x7 + max-pool) stem."""

  stage_sizes: Sequence[int]
  block_cls: ModuleDef
  num_classes: int
  num_filters: int = 64
  imagenet_stem: bool = False
  norm: Callable[..., ModuleDef] = nn.BatchNorm

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    # BatchNorm as in the reference code: momentum 0.9, eps 1e-5. It
    # normalizes over the batch each device sees (no cross-device sync), the
    # setting SAM's per-device ascent was designed for.
    norm = functools.partial(self.norm, use_running_average=not train,
                             momentum=0.9, epsilon=1e-5)
    if self.imagenet_stem:
      x = nn.Conv(self.num_filters, (7, 7), strides=2, padding=((3, 3), (3, 3)),
                  use_bias=False, name='conv_init')(x)
      x = nn.relu(norm(name='norm_init')(x))
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    else:
      x = conv3x3(self.num_filters, name='conv_init')(x)
      x = nn.relu(norm(name='norm_init')(x))
    for stage, num_blocks in enumerate(self.stage_sizes):
      for block in range(num_blocks):
        strides = 2 if stage > 0 and block == 0 else 1
        x = self.block_cls(self.num_filters * 2**stage, strides=strides,
                           norm=norm)(x)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2),
                             block_cls=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3),
                             block_cls=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3),
                             block_cls=BottleneckBlock, imagenet_stem=True)
