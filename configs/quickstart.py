"""Quickstart: SAM on MNIST-1D with an MLP; no download, under a minute.

MNIST-1D (Greydanus, 2020) is generated locally by the `mnist1d` package:
4,000 training and 1,000 test signals of length 40, 10 classes.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'mnist1d'
  config.model = 'mlp'
  config.num_neurons = (300, 100)
  config.optimizer = 'sam'
  config.rho = 0.05
  config.learning_rate = 0.1
  config.batch_size = 128
  config.weight_decay = 1e-4
  config.num_epochs = 60
  config.lr_boundaries = (0.5, 0.75)
  config.eval_batch_size = 1000
  return config
