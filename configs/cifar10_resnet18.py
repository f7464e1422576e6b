"""CIFAR-10, ResNet-18 (num_filters=64): the setup of Shin et al. (2025).

SAM (rho 0.05) around SGD with momentum 0.9, lr 0.1 decayed x0.1 at 50/75%
of 200 epochs, batch 128, weight decay 5e-4, random crops (4-pixel padding)
and horizontal flips, per-channel normalization. Sweep the width with
--config.num_filters.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'cifar10'
  config.augment = True
  config.model = 'resnet18'
  config.num_filters = 64
  config.optimizer = 'sam'
  config.rho = 0.05
  config.learning_rate = 0.1
  config.momentum = 0.9
  config.batch_size = 128
  config.weight_decay = 5e-4
  config.num_epochs = 200
  config.lr_schedule = 'step'
  config.lr_boundaries = (0.5, 0.75)
  return config
