"""CIFAR-100, ResNet-18: the CIFAR-10 setup on 100 classes."""

from configs import cifar10_resnet18


def get_config():
  config = cifar10_resnet18.get_config()
  config.dataset = 'cifar100'
  return config
