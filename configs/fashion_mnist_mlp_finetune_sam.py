"""Second half of the fine-tuning pair: SAM from an SGD run's final weights.

Andriushchenko & Flammarion (2022) find that a few epochs of SAM at the end
of SGD training recover much of SAM's generalization. The pretrained run's
workdir is the config argument:
  --config=configs/fashion_mnist_mlp_finetune_sam.py:runs/pretrain
(or --config.init_from=DIR; one of the two is required). The optimizer
starts afresh, at a small constant learning rate.
"""

from ml_collections import config_dict

from configs import fashion_mnist_mlp


def get_config(init_from: str = ''):
  config = fashion_mnist_mlp.get_config()
  # Required: without a run to start from this would train from scratch.
  config.init_from = init_from or config_dict.placeholder(str)
  config.optimizer = 'sam'
  config.rho = 0.05
  config.num_epochs = 10
  config.learning_rate = 0.01
  config.lr_schedule = 'constant'
  return config
