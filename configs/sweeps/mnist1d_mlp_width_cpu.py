"""MNIST-1D MLP width sweep trained to convergence on a 2-core CPU.

The widths of mnist_mlp_width.py, SGD and SAM, 3 seeds side by side
(num_replicas=3): 10 runs of configs/quickstart.py (60 epochs on MNIST-1D's
4,000 training signals, generated locally). Unlike the 5-epoch Fashion-MNIST
CPU sweep, every network here fits its training set, the regime in which
Shin et al. compare SAM with SGD.

  python sweep.py --workdir=runs/mnist1d_mlp_width_cpu \
      --sweep_config=configs/sweeps/mnist1d_mlp_width_cpu.py
  python report.py runs/mnist1d_mlp_width_cpu

Measured on the 2-core CPU: 17 min 9 s in all; the (3000, 1000) runs took
4 min 15 s (SGD) and 6 min 47 s (SAM), the (1200, 400) ones 1 min 1 s and
1 min 40 s, each narrower run about 35 s.
"""

from configs.sweeps import mnist_mlp_width


def get_sweep():
  return {
      'config': 'configs/quickstart.py',
      'grid': {
          'num_neurons': mnist_mlp_width.WIDTHS,
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {'num_replicas': 3},
  }
