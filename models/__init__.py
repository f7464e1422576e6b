"""The one place that maps `config.model` to a network."""

import functools
from typing import Callable

import flax.linen as nn
import ml_collections

from models import resnet
from models.mlp import MLP


def _resnet(family, config: ml_collections.ConfigDict,
            num_classes: int) -> nn.Module:
  return family(num_filters=config.num_filters, norm=config.norm,
                num_classes=num_classes)


def _wide_resnet(depth: int, config: ml_collections.ConfigDict,
                 num_classes: int) -> nn.Module:
  return resnet.WideResNet(depth, config.width_factor, norm=config.norm,
                           num_classes=num_classes)


# name -> (config, num_classes) -> module. The MLP is sized by
# `config.num_neurons`, the ResNets by `config.num_filters`, the WideResNets
# by `config.width_factor`; `config.norm` picks the ResNets' normalization.
MODELS: dict[str, Callable[[ml_collections.ConfigDict, int], nn.Module]] = {
    'mlp': lambda config, num_classes: MLP(
        num_neurons=tuple(config.num_neurons), num_classes=num_classes),
    'resnet18': functools.partial(_resnet, resnet.ResNet18),
    'resnet34': functools.partial(_resnet, resnet.ResNet34),
    'preact_resnet18': functools.partial(_resnet, resnet.PreActResNet18),
    'resnet50': functools.partial(_resnet, resnet.ResNet50),
    'wrn16': functools.partial(_wide_resnet, 16),
    'wrn28': functools.partial(_wide_resnet, 28),
}

# Models built from 2D convolutions need images (height, width, channels).
CONVOLUTIONAL = frozenset(MODELS) - {'mlp'}
NORMS = resnet.NORMS


def create_model(config: ml_collections.ConfigDict, num_classes: int
                 ) -> nn.Module:
  """Returns the untrained network that `config.model` names."""
  if config.model not in MODELS:
    raise ValueError(f'unknown model {config.model!r}; known models: '
                     f'{", ".join(sorted(MODELS))}')
  return MODELS[config.model](config, num_classes)
