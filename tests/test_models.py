"""Model sizes against published parameter counts and the width knobs."""

import jax
import jax.numpy as jnp
import ml_collections
import pytest

import models


def make(model, **keys):
  config = ml_collections.ConfigDict(
      {'model': model, 'num_neurons': (300, 100), 'num_filters': 64, **keys})
  return config


def count(config, num_classes, shape):
  module = models.create_model(config, num_classes)
  variables = jax.eval_shape(lambda: module.init(
      jax.random.key(0), jnp.zeros((1,) + shape), train=False))
  return sum(x.size for x in jax.tree.leaves(variables['params']))


@pytest.mark.parametrize('model,num_classes,shape,published', [
    # torchvision / kuangliu/pytorch-cifar counts.
    ('resnet18', 10, (32, 32, 3), 11_173_962),
    ('resnet34', 10, (32, 32, 3), 21_282_122),
    ('resnet18', 100, (32, 32, 3), 11_220_132),
    ('resnet50', 1000, (224, 224, 3), 25_557_032),
])
def test_resnet_parameter_counts_match_published(model, num_classes, shape,
                                                 published):
  assert count(make(model), num_classes, shape) == published


@pytest.mark.parametrize('widths', [(300, 100), (75, 25), (3000, 1000), (7,)])
def test_mlp_parameter_count_is_the_sum_over_dense_layers(widths):
  sizes = (784,) + widths + (10,)
  expected = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
  assert count(make('mlp', num_neurons=widths), 10, (28, 28, 1)) == expected


def test_resnet_parameters_grow_quadratically_with_num_filters():
  counts = [count(make('resnet18', num_filters=k), 10, (32, 32, 3))
            for k in (8, 16, 32, 64)]
  assert counts == sorted(counts)
  for small, large in zip(counts, counts[1:]):
    assert 3.9 < large / small < 4.05  # Conv weights scale as k^2.


@pytest.mark.parametrize('shape', [(28, 28, 1), (40, 24, 3), (64, 64, 3)])
def test_resnets_take_any_input_size(shape):
  module = models.create_model(make('resnet18', num_filters=4), 7)
  x = jnp.zeros((2,) + shape)
  variables = module.init(jax.random.key(0), x, train=False)
  assert module.apply(variables, x, train=False).shape == (2, 7)


def test_batchnorm_statistics_exist_only_for_resnets():
  def collections(model):
    module = models.create_model(make(model, num_filters=4), 10)
    return set(jax.eval_shape(lambda: module.init(
        jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)))
  assert collections('mlp') == {'params'}
  assert collections('resnet18') == {'params', 'batch_stats'}


def test_unknown_model_lists_the_known_ones():
  with pytest.raises(ValueError, match='known models: mlp, resnet18'):
    models.create_model(make('vgg16'), 10)
