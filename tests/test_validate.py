"""Config checks of the experiment knobs (main.py's one-line errors are
tested end to end in test_main.py)."""

import importlib

import pytest

from configs import default
from configuration import config_util
from configuration import validate
from input_pipeline import sources
from input_pipeline import tudataset
from tests import data_files
from tests.conftest import REPO
from tests.conftest import small_config

BAD = [
    ({'label_noise': 1.0}, 'label_noise must be in [0, 1), got 1.0'),
    ({'label_noise_type': 'pairs'}, "unknown label_noise_type 'pairs'"),
    (
        {'dataset': 'imagenet2012', 'label_noise': 0.2},
        'label_noise needs an in-memory dataset',
    ),
    (
        {'optimizer': 'sam', 'sam_m': 30},
        'sam_m=30 must divide the per-device batch (100 / 1 devices = 100)',
    ),
    ({'sam_m': -1}, 'sam_m must be >= 0'),
    ({'sam_steps': 0}, 'sam_steps must be >= 1'),
    ({'sam_eta': -0.1}, 'sam_eta must be >= 0'),
    ({'sam_batchnorm_stats': 'both'}, "unknown sam_batchnorm_stats 'both'"),
    ({'sam_start_epoch': 3}, 'sam_start_epoch must be in [0, num_epochs=3)'),
    ({'base_optimizer': 'lion'}, "unknown base_optimizer 'lion'; known: adam"),
    (
        {'lr_schedule': 'exponential'},
        "unknown lr_schedule 'exponential'; known: constant",
    ),
    ({'warmup_epochs': 3}, 'warmup_epochs must be in [0, num_epochs=3)'),
    ({'adam_b2': 1.0}, 'adam_b2 must be in [0, 1)'),
    (
        {'model': 'resnet18', 'dataset': 'fashion_mnist', 'norm': 'layer'},
        "unknown norm 'layer'; known: batch, group, none",
    ),
    (
        {'model': 'wrn28', 'dataset': 'fashion_mnist', 'width_factor': 0},
        'width_factor must be >= 1',
    ),
    (
        {'model': 'resnet18'},
        'resnet18 reads images, but mnist1d holds features, which '
        'model=diagonal_linear/mlp/series_transformer reads',
    ),
    (
        {'model': 'vit'},
        'vit reads images, but mnist1d holds features, which '
        'model=diagonal_linear/mlp/series_transformer reads',
    ),
    (
        {'model': 'vit', 'dataset': 'fashion_mnist', 'patch_size': 5},
        'patch_size 5 does not divide the 28x28 images of fashion_mnist',
    ),
    (
        {
            'model': 'vit',
            'dataset': 'cifar10',
            'hidden_size': 96,
            'num_heads': 5,
        },
        'hidden_size 96 is not divisible by the 5 attention',
    ),
    (
        {'model': 'vit', 'dataset': 'cifar10', 'pooling': 'max'},
        "unknown pooling 'max'; known: cls, mean",
    ),
    (
        {'model': 'text_transformer'},
        'text_transformer reads tokens, but mnist1d holds features, which '
        'model=diagonal_linear/mlp/series_transformer reads',
    ),
    (
        {'dataset': 'imdb_reviews'},
        'mlp reads images or features, but imdb_reviews holds tokens, which '
        'model=lstm/text_transformer reads',
    ),
    (
        {
            'model': 'text_transformer',
            'dataset': 'imdb_reviews',
            'max_length': 0,
        },
        'vocab_size must be >= 3 (padding, unknown and a '
        'word) and max_length >= 1, got 20000 and 0',
    ),
    (
        {
            'model': 'text_transformer',
            'dataset': 'imdb_reviews',
            'augment': True,
        },
        'augment=True needs images, but imdb_reviews holds tokens',
    ),
    (
        {'model': 'gcn'},
        'gcn reads graphs, but mnist1d holds features, which '
        'model=diagonal_linear/mlp/series_transformer reads',
    ),
    (
        {'dataset': 'ogbg_molpcba'},
        'mlp reads images or features, but ogbg_molpcba holds graphs, which '
        'model=gcn reads',
    ),
    (
        {'model': 'gcn', 'dataset': 'ogbg_molpcba', 'depth': 0},
        'hidden_size and depth must be >= 1',
    ),
    (
        {'model': 'gcn', 'dataset': 'ogbg_molpcba', 'max_nodes': 0},
        'max_nodes and max_edges must be in [1, 32767], got 0 and 128',
    ),
    (
        {'model': 'gcn', 'dataset': 'ogbg_molpcba', 'label_noise': 0.2},
        'label_noise flips class labels; ogbg_molpcba is multilabel',
    ),
    (
        {'analysis': {'parts': ('hessian', 3)}},
        'analysis.parts must be a tuple of names, e.g. '
        "'('hessian','sharpness','landscape')'",
    ),
    (
        {'validation_fraction': 1.0},
        'validation_fraction must be in [0, 1), got 1.0',
    ),
    (
        {'dataset': 'imagenet2012', 'validation_fraction': 0.1},
        'validation_fraction needs an in-memory dataset',
    ),
    (
        {'init_from': '/nonexistent/run'},
        'init_from=/nonexistent/run is not a run directory with checkpoints',
    ),
    ({'epoch_passes': 0}, 'epoch_passes must be >= 1, got 0'),
    (
        {'cpu_threads': -1},
        'cpu_threads must be >= 0 (0 = as XLA sizes it), got -1',
    ),
    (
        {'dataset': 'imagenet2012', 'epoch_passes': 2},
        'epoch_passes > 1 needs an in-memory dataset',
    ),
    (
        {'model': 'diagonal_linear'},
        'diagonal_linear predicts one real target; mnist1d is '
        'classification with 10 outputs',
    ),
    (
        {'dataset': 'sparse_regression', 'label_noise': 0.2},
        'label_noise flips class labels; sparse_regression is regression',
    ),
    (
        {'dataset': 'sparse_regression', 'input_dim': 4, 'num_nonzero': 5},
        'num_nonzero must be in [1, input_dim=4], got 5',
    ),
    (
        {'dataset': 'teacher_regression', 'target_noise': -1.0},
        'target_noise must be >= 0, got -1.0',
    ),
    (
        {'dataset': 'maennel_1d', 'num_train_examples': 5},
        'maennel_1d is its 12 points; leave num_train_examples at 0, got 5',
    ),
    (
        {'dataset': 'sparse_regression', 'data_seed': -1, 'num_replicas': 2},
        'data_seed=-1 draws the data from each seed, but replicas share',
    ),
    ({'mlp_init': 'he'}, "unknown mlp_init 'he'; known: default, maennel"),
    ({'init_scale': 0.0}, 'init_scale must be > 0, got 0.0'),
    (
        {
            'dataset': 'sparse_regression',
            'optimizer': 'sam',
            'sam_variant': 'mesa',
        },
        'sam_variant=mesa needs a classification task; sparse_regression is '
        'regression',
    ),
]


@pytest.mark.parametrize('overrides,message', BAD)
def test_bad_knobs_are_refused_with_a_clear_message(overrides, message):
  with pytest.raises(config_util.ConfigError) as error:
    validate.check_config(small_config(**overrides))
  assert message in str(error.value)
  assert '\n' not in str(error.value)


def test_every_shipped_config_is_valid(tmp_path):
  # The datasets read from files find tiny ones in their formats.
  data_files.write_treebank(tmp_path)
  data_files.write_mitbih(tmp_path)
  data_files.write_tu(tmp_path, 'Mutagenicity')
  names = [
      p.stem for p in (REPO / 'configs').glob('*.py') if p.stem != '__init__'
  ]
  assert len(names) >= 12
  for name in names:
    config = importlib.import_module(f'configs.{name}').get_config()
    # A fine-tuning config leaves its run to the user; the rest is checked.
    missing = config_util.missing_values(config, default.get_config())
    assert missing == (['init_from'] if 'finetune' in name else []), name
    with config.ignore_type():
      for key in missing:
        config[key] = ''
    if (
        config.dataset.startswith(tudataset.PREFIX)
        or sources.get_spec(config.dataset).download
    ):
      config.data_dir = str(tmp_path)
    validate.check_config(config)
