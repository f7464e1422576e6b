"""Model sizes against published parameter counts and the width knobs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from input_pipeline import spec
import models


def make(model, **keys):
  config = default.get_config()
  config.model = model
  config.update(keys)
  return config


def count(config, num_classes, shape):
  module = models.create_model(config, num_classes)
  variables = jax.eval_shape(
      lambda: module.init(
          jax.random.key(0), jnp.zeros((1,) + shape), train=False
      )
  )
  return sum(x.size for x in jax.tree.leaves(variables['params']))


@pytest.mark.parametrize(
    'model,keys,num_classes,shape,published',
    [
        # torchvision and kuangliu/pytorch-cifar counts.
        ('resnet18', {}, 10, (32, 32, 3), 11_173_962),
        ('resnet34', {}, 10, (32, 32, 3), 21_282_122),
        ('resnet18', {}, 100, (32, 32, 3), 11_220_132),
        ('resnet50', {}, 1000, (224, 224, 3), 25_557_032),
        # Zagoruyko & Komodakis: WRN-28-10 36.5M, WRN-16-8 11.0M (exact counts
        # of their PyTorch port).
        ('wrn28', {'width_factor': 10}, 10, (32, 32, 3), 36_479_194),
        ('wrn28', {'width_factor': 10}, 100, (32, 32, 3), 36_536_884),
        ('wrn16', {'width_factor': 8}, 10, (32, 32, 3), 10_961_370),
        # kuangliu's PreActResNet18 (11,171,146) omits He et al.'s final
        # norm-ReLU, whose BatchNorm adds 2 x 512 parameters.
        ('preact_resnet18', {}, 10, (32, 32, 3), 11_171_146 + 1024),
        # timm's vit_{tiny,small,base}_patch16_224 (Dosovitskiy et al.: ViT-B/16
        # 86M), with their 1000-class heads.
        (
            'vit',
            {'hidden_size': 192, 'patch_size': 16},
            1000,
            (224, 224, 3),
            5_717_416,
        ),
        (
            'vit',
            {'hidden_size': 384, 'patch_size': 16},
            1000,
            (224, 224, 3),
            22_050_664,
        ),
        (
            'vit',
            {'hidden_size': 768, 'patch_size': 16},
            1000,
            (224, 224, 3),
            86_567_656,
        ),
        # Mean pooling drops the class token and its position: 2 x 768.
        (
            'vit',
            {'hidden_size': 768, 'pooling': 'mean'},
            1000,
            (224, 224, 3),
            86_567_656 - 2 * 768,
        ),
        # GroupNorm has BatchNorm's parameters; no normalization removes them.
        ('resnet18', {'norm': 'group'}, 10, (32, 32, 3), 11_173_962),
        ('resnet18', {'norm': 'none'}, 10, (32, 32, 3), 11_173_962 - 2 * 4800),
    ],
)
def test_parameter_counts_match_published(
    model, keys, num_classes, shape, published
):
  assert count(make(model, **keys), num_classes, shape) == published


@pytest.mark.parametrize('widths', [(300, 100), (75, 25), (3000, 1000), (7,)])
def test_mlp_parameter_count_is_the_sum_over_dense_layers(widths):
  sizes = (784,) + widths + (10,)
  expected = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
  assert count(make('mlp', num_neurons=widths), 10, (28, 28, 1)) == expected


def test_resnet_parameters_grow_quadratically_with_num_filters():
  counts = [
      count(make('resnet18', num_filters=k), 10, (32, 32, 3))
      for k in (8, 16, 32, 64)
  ]
  assert counts == sorted(counts)
  for small, large in zip(counts, counts[1:]):
    assert 3.9 < large / small < 4.05  # Conv weights scale as k^2.


@pytest.mark.parametrize('shape', [(28, 28, 1), (40, 24, 3), (64, 64, 3)])
def test_resnets_take_any_input_size(shape):
  # Shapes only (nothing compiled): global average pooling is what makes
  # the head independent of the input size.
  module = models.create_model(make('resnet18', num_filters=4), 7)
  x = jax.ShapeDtypeStruct((2,) + shape, jnp.float32)
  variables = jax.eval_shape(
      lambda x: module.init(jax.random.key(0), x, train=False), x
  )
  logits = jax.eval_shape(
      lambda v, x: module.apply(v, x, train=False), variables, x
  )
  assert logits.shape == (2, 7)


def test_batchnorm_statistics_exist_only_with_batchnorm():
  def collections(model, norm='batch'):
    module = models.create_model(make(model, num_filters=4, norm=norm), 10)
    return set(
        jax.eval_shape(
            lambda: module.init(
                jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False
            )
        )
    )

  assert collections('mlp') == {'params'}
  assert collections('resnet18') == {'params', 'batch_stats'}
  assert collections('resnet18', 'group') == {'params'}
  assert collections('wrn16', 'none') == {'params'}


def test_groupnorm_makes_each_example_independent_of_its_batch():
  module = models.create_model(
      make('resnet18', num_filters=4, norm='group'), 10
  )
  x = jax.random.normal(jax.random.key(1), (4, 16, 16, 3))
  variables = module.init(jax.random.key(0), x, train=True)
  together = module.apply(variables, x, train=True)
  alone = module.apply(variables, x[:1], train=True)
  np.testing.assert_allclose(together[:1], alone, rtol=1e-5, atol=1e-6)


def test_vit_heads_and_mlp_follow_its_ratios_and_width_is_hidden_size():
  # ViT-S: 384 wide, 6 heads of 64, MLP 1536; num_heads overrides the ratio.
  module = models.create_model(make('vit', hidden_size=384, depth=1), 10)
  params = jax.eval_shape(
      lambda: module.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  )['params']
  block = params['Encoder_0']['EncoderBlock_0']
  assert block['MultiHeadDotProductAttention_0']['query']['kernel'].shape == (
      384,
      6,
      64,
  )
  assert block['Dense_0']['kernel'].shape == (384, 1536)
  assert (
      models.create_model(
          make('vit', hidden_size=384, num_heads=8), 10
      ).num_heads
      == 8
  )
  # A 4x4-patch ViT of Fashion-MNIST: 49 patches and the class token.
  module = models.create_model(
      make('vit', hidden_size=32, depth=2, patch_size=4), 10
  )
  x = jax.random.normal(jax.random.key(1), (3, 28, 28, 1))
  variables = module.init(jax.random.key(0), x)
  assert variables['params']['pos_embedding'].shape == (1, 50, 32)
  assert module.apply(variables, x).shape == (3, 10)
  # Width grows the parameters quadratically: 12 h^2 per block.
  narrow, wide = (
      count(make('vit', hidden_size=h, depth=2, patch_size=4), 10, (28, 28, 1))
      for h in (64, 128)
  )
  assert 3.5 < wide / narrow < 4


def test_vit_patches_are_the_strided_convolution_of_vit():
  # The patch embedding (a Dense over flattened patches) equals ViT's
  # stride-patch_size convolution with the same weights.
  module = models.create_model(
      make('vit', hidden_size=8, depth=1, patch_size=4), 10
  )
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
  params = module.init(jax.random.key(0), x)['params']
  kernel = params['embedding']['kernel'].reshape(4, 4, 3, 8)
  conv = jax.lax.conv_general_dilated(
      x, kernel, (4, 4), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )
  _, state = module.apply(
      {'params': params},
      x,
      capture_intermediates=lambda layer, _: layer.name == 'embedding',
  )
  embedded = state['intermediates']['embedding']['__call__'][0]
  np.testing.assert_allclose(
      embedded,
      conv.reshape(2, 4, 8) + params['embedding']['bias'],
      rtol=1e-5,
      atol=1e-5,
  )


def test_unknown_model_lists_the_known_ones():
  with pytest.raises(
      ValueError,
      match=(
          "unknown model 'vgg16'; known: diagonal_linear, gcn, lstm, mlp, "
          'preact_resnet18'
      ),
  ):
    models.create_model(make('vgg16'), 10)


def test_every_family_declares_keys_of_the_default_config():
  keys = default.get_config()
  for name, family in models.MODELS.items():
    assert set(family.width_keys) <= set(family.keys), name
    assert set(family.keys) <= set(keys), name
    assert set(family.inputs) <= set(spec.INPUT_KINDS), name
  assert {n for n, f in models.MODELS.items() if f.convolutional} == {
      'resnet18',
      'resnet34',
      'preact_resnet18',
      'resnet50',
      'wrn16',
      'wrn28',
  }
