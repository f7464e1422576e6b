"""CIFAR-10 ResNet-18 with symmetric label noise (Shin et al.).

The noise fraction is the config argument (default 0.25), e.g.
  --config=configs/cifar10_resnet18_label_noise.py:0.5
"""

from configs import cifar10_resnet18


def get_config(label_noise: str = '0.25'):
  config = cifar10_resnet18.get_config()
  config.label_noise = float(label_noise)
  config.label_noise_type = 'symmetric'
  return config
