"""Fashion-MNIST MLP width sweep sized for a 2-core CPU: about 18 minutes.

The widths of mnist_mlp_width.py, SGD and SAM, 3 seeds: 10 runs of
configs/fashion_mnist_mlp.py shortened to 5 epochs (lr x0.1 at 50% and 75%),
each training its seeds 0, 1, 2 side by side (num_replicas=3; report.py
reads each replica's summary as one seed).

  python sweep.py --workdir=runs/fashion_mnist_mlp_width_cpu \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_width_cpu.py
  python report.py runs/fashion_mnist_mlp_width_cpu

Measured on the 2-core CPU: 18 min 16 s in all; the (3000, 1000) runs took
3 min 54 s (SGD) and 7 min 16 s (SAM), the (1200, 400) ones 1 min 23 s and
2 min 14 s, each narrower run under a minute. Each run already uses both
cores, so --parallel=2 gains nothing here.
"""

from configs.sweeps import mnist_mlp_width


def get_sweep():
  return {
      'config': 'configs/fashion_mnist_mlp.py',
      'grid': {
          'num_neurons': mnist_mlp_width.WIDTHS,
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {
          'num_epochs': 5,
          'lr_boundaries': (0.5, 0.75),
          'num_replicas': 3,
      },
  }
