"""The model families: each declares what builds it, its width keys, the
config keys it reads, the inputs it takes and its own checks; the rest of
the framework asks the registry (MODELS) rather than naming models."""

from collections.abc import Callable
import dataclasses
import functools
from typing import Any

import flax.linen as nn
import ml_collections

from configuration.config_util import require
from input_pipeline import sources
from models import diagonal
from models import gcn
from models import lstm
from models import mlp
from models import resnet
from models import series_transformer
from models import text_transformer
from models import transformer
from models import vit


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


def _tagger(config: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  return text_transformer.TransformerTagger(
      vocab_size=config.vocab_size,
      max_length=config.max_length,
      num_classes=num_classes,
      **_encoder_shape(config),
  )


def _series_transformer(
    config: ml_collections.ConfigDict, num_classes: int
) -> nn.Module:
  return series_transformer.SeriesTransformer(
      patch_size=config.patch_size,
      num_classes=num_classes,
      pooling=config.pooling,
      **_encoder_shape(config),
  )


def _gcn(config: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  return gcn.GCN(
      hidden_size=config.hidden_size,
      depth=config.depth,
      num_classes=num_classes,
      layout=sources.dataset_spec(config).graph_layout,
  )


# The key that names the family (each family reads its own, Family.keys).
CONFIG_KEYS = ('model', 'dtype')
# The dtypes of the forward and backward passes (config.dtype).
DTYPES = ('float32', 'bfloat16')


@dataclasses.dataclass(frozen=True)
class Family:
  """A network `config.model` names, as the rest of the framework sees it.

  Attributes:
    build: (config, number of outputs) -> the untrained Flax module.
    width_keys: the config keys that set its width (the x axis of width
      sweeps).
    keys: every config key it reads (its width keys among them).
    inputs: the kinds of dataset inputs it reads (spec.INPUT_KINDS).
    convolutional: built from 2D convolutions (XLA:CPU dispatches these
      differently, runtime/xla_cpu.py).
    check: (config, dataset spec) -> raises ConfigError for a bad value of
      its keys.
    normalized: config -> whether the network has normalization layers
      (BatchNorm, GroupNorm, LayerNorm: what sam_variant='sam_on' perturbs).
    per_token: its outputs are a prediction per token, for a tagging task
      (the others' are one per example).
  """

  build: Callable[[ml_collections.ConfigDict, int], nn.Module]
  width_keys: tuple[str, ...]
  keys: tuple[str, ...]
  inputs: tuple[str, ...]
  convolutional: bool = False
  check: Callable[[ml_collections.ConfigDict, Any], None] = (
      lambda config, spec: None
  )
  normalized: Callable[[ml_collections.ConfigDict], bool] = lambda config: False
  per_token: bool = False


def _check_init_scale(config: ml_collections.ConfigDict) -> None:
  require(
      config.init_scale > 0,
      f'init_scale must be > 0, got {config.init_scale}',
  )


def _check_mlp(config: ml_collections.ConfigDict, spec: Any) -> None:
  del spec
  _one_of(config, 'mlp_init', mlp.INITS)
  _check_init_scale(config)
  require(
      len(config.num_neurons) > 0,
      'num_neurons is empty: the MLP needs at least one hidden layer',
  )
  require(
      all(int(w) == w and w >= 1 for w in config.num_neurons),
      f'num_neurons must be positive integers, got '
      f'{tuple(config.num_neurons)}',
  )


def _check_convolutional(width_key: str) -> Callable[..., None]:
  """The checks of a ResNet family whose width `width_key` sets."""

  def check(config: ml_collections.ConfigDict, spec: Any) -> None:
    del spec
    require(
        config[width_key] >= 1,
        f'{width_key} must be >= 1, got {config[width_key]}',
    )
    _one_of(config, 'norm', resnet.NORMS)

  return check


def _check_encoder(config: ml_collections.ConfigDict, spec: Any) -> None:
  del spec
  _one_of(config, 'pooling', transformer.POOLINGS)
  require(
      min(config.hidden_size, config.depth, config.mlp_ratio) >= 1
      and config.num_heads >= 0,
      'hidden_size, depth and mlp_ratio must be >= 1 and num_heads >= 0',
  )
  heads = transformer.num_heads(config.hidden_size, config.num_heads)
  require(
      config.hidden_size % heads == 0,
      f'hidden_size {config.hidden_size} is not divisible by the '
      f'{heads} attention heads',
  )


def _check_patches(config: ml_collections.ConfigDict, spec: Any) -> None:
  _check_encoder(config, spec)
  require(
      config.patch_size >= 1,
      f'patch_size must be >= 1, got {config.patch_size}',
  )


def _check_vit(config: ml_collections.ConfigDict, spec: Any) -> None:
  _check_patches(config, spec)
  if spec.is_image:
    side = spec.image_size or config.image_size
    require(
        side % config.patch_size == 0,
        f'patch_size {config.patch_size} does not divide the '
        f'{side}x{side} images of {config.dataset}',
    )


def _check_diagonal(config: ml_collections.ConfigDict, spec: Any) -> None:
  _check_init_scale(config)
  require(
      spec.task.name == 'regression' and spec.num_classes == 1,
      f'diagonal_linear predicts one real target; {config.dataset} is '
      f'{spec.task.name} with {spec.num_classes} outputs',
  )
  require(
      not config.sparsity,
      'diagonal_linear has no kernels to prune; leave sparsity at 0',
  )


def _check_gcn(config: ml_collections.ConfigDict, spec: Any) -> None:
  del spec
  require(
      min(config.hidden_size, config.depth) >= 1,
      'hidden_size and depth must be >= 1',
  )


def _check_lstm(config: ml_collections.ConfigDict, spec: Any) -> None:
  del spec
  require(
      config.hidden_size >= 1,
      f'hidden_size must be >= 1, got {config.hidden_size}',
  )


def _one_of(config: ml_collections.ConfigDict, key: str, known) -> None:
  require(
      config[key] in known,
      f'unknown {key} {config[key]!r}; known: {", ".join(sorted(known))}',
  )


_RESNET = dict(
    width_keys=('num_filters',),
    keys=('num_filters', 'norm'),
    inputs=('images',),
    convolutional=True,
    check=_check_convolutional('num_filters'),
    normalized=lambda config: config.norm != 'none',
)
_WIDE_RESNET = dict(
    width_keys=('width_factor',),
    keys=('width_factor', 'norm'),
    inputs=('images',),
    convolutional=True,
    check=_check_convolutional('width_factor'),
    normalized=lambda config: config.norm != 'none',
)
_ENCODER_KEYS = ('hidden_size', 'depth', 'num_heads', 'mlp_ratio', 'pooling')

MODELS: dict[str, Family] = {
    'mlp': Family(
        build=lambda config, num_classes: mlp.MLP(
            num_neurons=tuple(config.num_neurons),
            num_classes=num_classes,
            initialization=config.mlp_init,
            init_scale=config.init_scale,
        ),
        width_keys=('num_neurons',),
        keys=('num_neurons', 'mlp_init', 'init_scale'),
        inputs=('images', 'features'),
        check=_check_mlp,
    ),
    'diagonal_linear': Family(
        build=lambda config, num_classes: diagonal.DiagonalLinear(
            init_scale=config.init_scale
        ),
        width_keys=(),
        keys=('init_scale',),
        inputs=('features',),
        check=_check_diagonal,
    ),
    'resnet18': Family(functools.partial(_resnet, resnet.ResNet18), **_RESNET),
    'resnet34': Family(functools.partial(_resnet, resnet.ResNet34), **_RESNET),
    'preact_resnet18': Family(
        functools.partial(_resnet, resnet.PreActResNet18), **_RESNET
    ),
    'resnet50': Family(functools.partial(_resnet, resnet.ResNet50), **_RESNET),
    'wrn16': Family(functools.partial(_wide_resnet, 16), **_WIDE_RESNET),
    'wrn28': Family(functools.partial(_wide_resnet, 28), **_WIDE_RESNET),
    'vit': Family(
        _vit,
        width_keys=('hidden_size',),
        keys=(*_ENCODER_KEYS, 'patch_size'),
        inputs=('images',),
        check=_check_vit,
        normalized=lambda config: True,
    ),
    'text_transformer': Family(
        _text_transformer,
        width_keys=('hidden_size',),
        keys=_ENCODER_KEYS,
        inputs=('tokens',),
        check=_check_encoder,
        normalized=lambda config: True,
    ),
    'transformer_tagger': Family(
        _tagger,
        width_keys=('hidden_size',),
        keys=tuple(k for k in _ENCODER_KEYS if k != 'pooling'),
        inputs=('tokens',),
        check=_check_encoder,
        normalized=lambda config: True,
        per_token=True,
    ),
    'lstm': Family(
        lambda config, num_classes: lstm.LSTMClassifier(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            num_classes=num_classes,
        ),
        width_keys=('hidden_size',),
        keys=('hidden_size',),
        inputs=('tokens',),
        check=_check_lstm,
    ),
    'series_transformer': Family(
        _series_transformer,
        width_keys=('hidden_size',),
        keys=(*_ENCODER_KEYS, 'patch_size'),
        inputs=('features',),
        check=_check_patches,
        normalized=lambda config: True,
    ),
    'gcn': Family(
        _gcn,
        width_keys=('hidden_size',),
        keys=('hidden_size', 'depth'),
        inputs=('graphs',),
        check=_check_gcn,
    ),
}


def get(name: str) -> Family:
  """The family `config.model` names; ConfigError naming the known ones."""
  require(
      name in MODELS,
      f'unknown model {name!r}; known: {", ".join(sorted(MODELS))}',
  )
  return MODELS[name]


def check(config: ml_collections.ConfigDict, spec: Any) -> None:
  """The model's own checks, and that it reads the dataset's inputs."""
  family = get(config.model)
  tagging = spec.task.name == 'tagging'
  readers = sorted(
      n
      for n, f in MODELS.items()
      if spec.inputs in f.inputs and f.per_token == tagging
  )
  require(
      spec.inputs in family.inputs,
      f'{config.model} reads {" or ".join(family.inputs)}, but '
      f'{config.dataset} holds {spec.inputs}, which model='
      f'{"/".join(readers)} reads',
  )
  family.check(config, spec)
  taggers = sorted(n for n, f in MODELS.items() if f.per_token)
  require(
      family.per_token == tagging,
      f'{config.dataset} asks for a tag per word, which model='
      f'{"/".join(taggers)} gives'
      if tagging
      else f'{config.model} tags every word; {config.dataset} is '
      f'{spec.task.name}',
  )
  require(
      config.dtype in DTYPES,
      f'unknown dtype {config.dtype!r}; known: {", ".join(DTYPES)}',
  )
  require(
      config.dtype == 'float32' or spec.inputs in ('images', 'features'),
      f'dtype={config.dtype} casts the inputs, which for {spec.inputs} '
      'would round token ids and graph indices; use float32',
  )


def create_model(
    config: ml_collections.ConfigDict, num_classes: int
) -> nn.Module:
  """Returns the untrained network that `config.model` names."""
  return get(config.model).build(config, num_classes)
