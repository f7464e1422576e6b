"""The one place that maps `config.model` to a network."""

from typing import Callable

import flax.linen as nn
import ml_collections

from models.mlp import MLP
from models.resnet import ResNet18, ResNet34, ResNet50

# name -> (config, num_classes) -> module. The MLP is sized by
# `config.num_neurons`, the ResNets by `config.num_filters`.
MODELS: dict[str, Callable[[ml_collections.ConfigDict, int], nn.Module]] = {
    'mlp': lambda config, num_classes: MLP(
        num_neurons=tuple(config.num_neurons), num_classes=num_classes),
    'resnet18': lambda config, num_classes: ResNet18(
        num_filters=config.num_filters, num_classes=num_classes),
    'resnet34': lambda config, num_classes: ResNet34(
        num_filters=config.num_filters, num_classes=num_classes),
    'resnet50': lambda config, num_classes: ResNet50(
        num_filters=config.num_filters, num_classes=num_classes),
}

# Models built from 2D convolutions need images (height, width, channels).
CONVOLUTIONAL = frozenset({'resnet18', 'resnet34', 'resnet50'})


def create_model(config: ml_collections.ConfigDict, num_classes: int
                 ) -> nn.Module:
  """Returns the untrained network that `config.model` names."""
  if config.model not in MODELS:
    raise ValueError(f'unknown model {config.model!r}; known models: '
                     f'{", ".join(sorted(MODELS))}')
  return MODELS[config.model](config, num_classes)
