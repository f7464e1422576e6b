"""MNIST, MLP (300, 100): the setup of Shin et al. (2025), Section 3.

SAM (rho 0.05) around SGD with momentum 0.9, lr 0.1 decayed x0.1 at 25/50/75%
of 100 epochs, batch 128, weight decay 1e-4. Sweep the width with
--config.num_neurons and compare with --config.optimizer=sgd.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'mnist'
  config.model = 'mlp'
  config.num_neurons = (300, 100)
  config.optimizer = 'sam'
  config.rho = 0.05
  config.learning_rate = 0.1
  config.momentum = 0.9
  config.batch_size = 128
  config.weight_decay = 1e-4
  config.num_epochs = 100
  config.lr_schedule = 'step'
  config.lr_boundaries = (0.25, 0.5, 0.75)
  return config
