"""CIFAR-10 ResNet-18 width sweep (Shin et al., 2025): SAM's gain vs size.

num_filters (the first stage's width; stages use x1, x2, x4, x8) from 4 to
256, SGD and SAM, 3 seeds: 42 runs of configs/cifar10_resnet18.py (200
epochs each; meant for accelerators).

  python sweep.py --workdir=runs/cifar10_resnet18_width \
      --sweep_config=configs/sweeps/cifar10_resnet18_width.py
  python report.py runs/cifar10_resnet18_width
"""


def get_sweep():
  return {
      'config': 'configs/cifar10_resnet18.py',
      'grid': {
          'seed': [0, 1, 2],
          'num_filters': [4, 8, 16, 32, 64, 128, 256],
          'optimizer': ['sgd', 'sam'],
      },
  }
