"""ResNets whose width is set by `num_filters` (He et al., 2016).

Three families, as in the SAM literature:

* CIFAR-style ResNet-18/34: a 3x3 stride-1 stem (no max-pool), four stages of
  basic blocks with widths num_filters x (1, 2, 4, 8).
* Pre-activation ResNet-18 (He et al., 2016b) and WideResNet-d-k (Zagoruyko
  and Komodakis, 2016): norm-ReLU-conv blocks; a WideResNet has a 16-filter
  stem and three stages of widths 16k x (1, 2, 4).
* ImageNet-style ResNet-50: a 7x7 stride-2 stem and 3x3 max-pool, four stages
  of bottleneck blocks (expansion 4, stride on the 3x3 conv: "v1.5").

All end in global average pooling, so any input size works. Padding is
explicit (1 for 3x3 convs) rather than 'SAME', so a stride-2 conv sees the same
pixels as in the PyTorch reference implementations. `norm` chooses the
normalization: BatchNorm, GroupNorm (batch-independent, as in the m-sharpness
studies) or none.
"""

from collections.abc import Callable, Sequence
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

ModuleDef = Any
NORMS = ('batch', 'group', 'none')

conv3x3 = functools.partial(
    nn.Conv, kernel_size=(3, 3), padding=((1, 1), (1, 1)), use_bias=False
)
conv1x1 = functools.partial(
    nn.Conv, kernel_size=(1, 1), padding='VALID', use_bias=False
)


class GroupNorm(nn.Module):
  """GroupNorm with 32 groups, or fewer where the channels are fewer."""

  scale_init: Callable[..., jax.Array] = nn.initializers.ones

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return nn.GroupNorm(
        num_groups=math.gcd(32, x.shape[-1]),
        epsilon=1e-5,
        scale_init=self.scale_init,
    )(x)


def _identity(**unused_kwargs) -> Callable[[jax.Array], jax.Array]:
  return lambda x: x


def normalization(kind: str, train: bool) -> ModuleDef:
  """A factory of normalization layers: norm(name=..., scale_init=...)."""
  if kind == 'batch':
    # As in the reference code: momentum 0.9, eps 1e-5. It normalizes over
    # the batch each device (or SAM micro-batch) sees, without cross-device
    # synchronization.
    return functools.partial(
        nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5
    )
  if kind == 'group':
    return GroupNorm
  if kind == 'none':
    return _identity
  raise ValueError(f'unknown norm {kind!r}; known: {", ".join(NORMS)}')


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
      residual = conv1x1(self.filters, strides=self.strides, name='conv_proj')(
          residual
      )
      residual = self.norm(name='norm_proj')(residual)
    return nn.relu(residual + y)


class PreActBlock(nn.Module):
  """norm-ReLU-conv3x3 twice; the projection sees the pre-activated input."""

  filters: int
  strides: int
  norm: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = nn.relu(self.norm()(x))
    residual = x
    if x.shape[-1] != self.filters or self.strides != 1:
      residual = conv1x1(self.filters, strides=self.strides, name='conv_proj')(
          y
      )
    y = conv3x3(self.filters, strides=self.strides)(y)
    y = conv3x3(self.filters)(nn.relu(self.norm()(y)))
    return residual + y


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
      residual = conv1x1(
          self.filters * self.expansion, strides=self.strides, name='conv_proj'
      )(residual)
      residual = self.norm(name='norm_proj')(residual)
    return nn.relu(residual + y)


class ResNet(nn.Module):
  """A ResNet: stem, stages of blocks (width num_filters x 2^stage), head.

  Attributes:
    stem_filters: width of the stem conv; None means num_filters.
    imagenet_stem: a 7x7 stride-2 conv and a max-pool instead of a 3x3 conv.
    preactivation: blocks normalize first, so a final norm-ReLU precedes the
      pooling.
  """

  stage_sizes: Sequence[int]
  block_cls: ModuleDef
  num_classes: int
  num_filters: int = 64
  norm: str = 'batch'
  stem_filters: int | None = None
  imagenet_stem: bool = False
  preactivation: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    norm = normalization(self.norm, train)
    stem_filters = self.stem_filters or self.num_filters
    if self.imagenet_stem:
      x = nn.Conv(
          stem_filters,
          (7, 7),
          strides=2,
          padding=((3, 3), (3, 3)),
          use_bias=False,
          name='conv_init',
      )(x)
      x = nn.relu(norm(name='norm_init')(x))
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    else:
      x = conv3x3(stem_filters, name='conv_init')(x)
      if not self.preactivation:
        x = nn.relu(norm(name='norm_init')(x))
    for stage, num_blocks in enumerate(self.stage_sizes):
      for block in range(num_blocks):
        strides = 2 if stage > 0 and block == 0 else 1
        x = self.block_cls(
            self.num_filters * 2**stage, strides=strides, norm=norm
        )(x)
    if self.preactivation:
      x = nn.relu(norm(name='norm_final')(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)


ResNet18 = functools.partial(
    ResNet, stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock
)
ResNet34 = functools.partial(
    ResNet, stage_sizes=(3, 4, 6, 3), block_cls=BasicBlock
)
PreActResNet18 = functools.partial(
    ResNet, stage_sizes=(2, 2, 2, 2), block_cls=PreActBlock, preactivation=True
)
ResNet50 = functools.partial(
    ResNet,
    stage_sizes=(3, 4, 6, 3),
    block_cls=BottleneckBlock,
    imagenet_stem=True,
)


def WideResNet(depth: int, width_factor: int, **kwargs) -> ResNet:  # pylint: disable=invalid-name
  """WRN-depth-k: (depth - 4) / 6 blocks in each of three stages."""
  blocks = (depth - 4) // 6
  return ResNet(
      stage_sizes=(blocks,) * 3,
      block_cls=PreActBlock,
      preactivation=True,
      stem_filters=16,
      num_filters=16 * width_factor,
      **kwargs,
  )
