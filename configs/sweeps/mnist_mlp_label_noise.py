"""MNIST MLP width sweep under label noise (Shin et al., 2025): SAM's gain
vs size for each fraction of corrupted training labels.

The widths of mnist_mlp_width.py x label_noise {0, 0.25, 0.5}, SGD and SAM,
3 seeds: 90 runs of configs/mnist_mlp.py (100 epochs each).

  python sweep.py --workdir=runs/mnist_mlp_label_noise \
      --sweep_config=configs/sweeps/mnist_mlp_label_noise.py --parallel=2
  python report.py runs/mnist_mlp_label_noise
"""

from configs.sweeps import mnist_mlp_width


def get_sweep():
  return {
      'config': 'configs/mnist_mlp.py',
      'grid': {
          'seed': [0, 1, 2],
          'label_noise': [0.0, 0.25, 0.5],
          'num_neurons': mnist_mlp_width.WIDTHS,
          'optimizer': ['sgd', 'sam'],
      },
  }
