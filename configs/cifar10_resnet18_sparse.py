"""CIFAR-10 ResNet-18 pruned at initialization with SNIP (Shin et al.).

The sparsity is the config argument (default 0.9), e.g.
  --config=configs/cifar10_resnet18_sparse.py:0.98
Change the pruner with --config.pruner=random or magnitude.
"""

from configs import cifar10_resnet18


def get_config(sparsity: str = '0.9'):
  config = cifar10_resnet18.get_config()
  config.pruner = 'snip'
  config.sparsity = float(sparsity)
  return config
