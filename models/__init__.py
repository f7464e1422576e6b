"""The one place that maps `config.model` to a network."""

from collections.abc import Callable
import functools

import flax.linen as nn
import ml_collections

from models import gcn
from models import resnet
from models import text_transformer
from models import transformer
from models import vit
from models.mlp import MLP


def _resnet(
    family, config: ml_collections.ConfigDict, num_classes: int
) -> nn.Module:
  return family(
      num_filters=config.num_filters, norm=config.norm, num_classes=num_classes
  )


def _wide_resnet(
    depth: int, config: ml_collections.ConfigDict, num_classes: int
) -> nn.Module:
  return resnet.WideResNet(
      depth, config.width_factor, norm=config.norm, num_classes=num_classes
  )


def _encoder_shape(config: ml_collections.ConfigDict) -> dict[str, int]:
  """The Transformer encoder's sizes, shared by the ViT and the text
  classifier."""
  return dict(
      hidden_size=config.hidden_size,
      depth=config.depth,
      num_heads=transformer.num_heads(config.hidden_size, config.num_heads),
      mlp_dim=config.mlp_ratio * config.hidden_size,
  )


def _vit(config: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  return vit.ViT(
      patch_size=config.patch_size,
      num_classes=num_classes,
      pooling=config.pooling,
      **_encoder_shape(config),
  )


def _text_transformer(
    config: ml_collections.ConfigDict, num_classes: int
) -> nn.Module:
  return text_transformer.TextTransformer(
      vocab_size=config.vocab_size,
      max_length=config.max_length,
      num_classes=num_classes,
      pooling=config.pooling,
      **_encoder_shape(config),
  )


def _gcn(config: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  return gcn.GCN(
      hidden_size=config.hidden_size,
      depth=config.depth,
      num_classes=num_classes,
      max_nodes=config.max_nodes,
      max_edges=config.max_edges,
  )


# name -> (config, num_classes) -> module. The MLP is sized by
# `config.num_neurons`, the ResNets by `config.num_filters`, the WideResNets
# by `config.width_factor`, the Transformers (ViT, text) and the GCN by
# `config.hidden_size`; `config.norm` picks the ResNets' normalization.
MODELS: dict[str, Callable[[ml_collections.ConfigDict, int], nn.Module]] = {
    'mlp': lambda config, num_classes: MLP(
        num_neurons=tuple(config.num_neurons), num_classes=num_classes
    ),
    'resnet18': functools.partial(_resnet, resnet.ResNet18),
    'resnet34': functools.partial(_resnet, resnet.ResNet34),
    'preact_resnet18': functools.partial(_resnet, resnet.PreActResNet18),
    'resnet50': functools.partial(_resnet, resnet.ResNet50),
    'wrn16': functools.partial(_wide_resnet, 16),
    'wrn28': functools.partial(_wide_resnet, 28),
    'vit': _vit,
    'text_transformer': _text_transformer,
    'gcn': _gcn,
}

# Models that read token ids (the other models read images or features).
TEXT_MODELS = frozenset({'text_transformer'})
# Models that read graph records (input_pipeline/graphs.py).
GRAPH_MODELS = frozenset({'gcn'})
# Models that need images (height, width, channels).
IMAGE_MODELS = frozenset(MODELS) - {'mlp'} - TEXT_MODELS - GRAPH_MODELS
# Models built from 2D convolutions (XLA:CPU dispatches them differently).
CONVOLUTIONAL = IMAGE_MODELS - {'vit'}
# Models built on the Transformer encoder (hidden_size, depth, heads).
TRANSFORMERS = frozenset({'vit'}) | TEXT_MODELS
NORMS = resnet.NORMS
POOLINGS = transformer.POOLINGS


def create_model(
    config: ml_collections.ConfigDict, num_classes: int
) -> nn.Module:
  """Returns the untrained network that `config.model` names."""
  if config.model not in MODELS:
    raise ValueError(
        f'unknown model {config.model!r}; known models: '
        f'{", ".join(sorted(MODELS))}'
    )
  return MODELS[config.model](config, num_classes)
