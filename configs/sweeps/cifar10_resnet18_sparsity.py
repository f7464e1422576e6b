"""CIFAR-10 ResNet-18 sparsity sweep (Shin et al., 2025): SAM's gain as
pruning at initialization removes parameters.

SNIP at sparsities 0 (dense) to 0.98, SGD and SAM, 3 seeds: 36 runs of
configs/cifar10_resnet18.py (200 epochs each; meant for accelerators). Add
--sweep='pruner=[random,snip]' to compare pruners.

  python sweep.py --workdir=runs/cifar10_resnet18_sparsity \
      --sweep_config=configs/sweeps/cifar10_resnet18_sparsity.py
  python report.py runs/cifar10_resnet18_sparsity
"""


def get_sweep():
  return {
      'config': 'configs/cifar10_resnet18.py',
      'grid': {
          'seed': [0, 1, 2],
          'sparsity': [0.0, 0.5, 0.8, 0.9, 0.95, 0.98],
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {'pruner': 'snip'},
  }
