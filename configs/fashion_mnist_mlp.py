"""Fashion-MNIST, MLP (300, 100): the MNIST setup of Shin et al. (2025)."""

from configs import mnist_mlp


def get_config():
  config = mnist_mlp.get_config()
  config.dataset = 'fashion_mnist'
  return config
