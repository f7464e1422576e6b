"""ImageNet, ResNet-50 (num_filters=64), as in Shin et al.'s code.

SAM (rho 0.05) around SGD with momentum 0.9, lr 0.2 decayed x0.1 at 25/50/75%
of 90 epochs, batch 512, weight decay 1e-4, Inception-style crops and flips.
TFDS prepares ImageNet from the archives in config.manual_dir (see
docs/running.md).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'imagenet2012'
  config.augment = True
  config.image_size = 224
  config.model = 'resnet50'
  config.num_filters = 64
  config.optimizer = 'sam'
  config.rho = 0.05
  config.learning_rate = 0.2
  config.momentum = 0.9
  config.batch_size = 512
  config.weight_decay = 1e-4
  config.num_epochs = 90
  config.lr_schedule = 'step'
  config.lr_boundaries = (0.25, 0.5, 0.75)
  # Host batches are stacked per dispatch; keep the stack small.
  config.steps_per_dispatch = 10
  config.eval_batch_size = 500
  return config
