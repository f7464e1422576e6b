"""Fashion-MNIST MLP width sweep sized for a 2-core CPU: about 25 minutes.

The widths of mnist_mlp_width.py, SGD and SAM, 3 seeds: 10 runs of
configs/fashion_mnist_mlp.py shortened to 5 epochs (lr x0.1 at 50% and 75%),
each training its seeds 0, 1, 2 side by side (num_replicas=3; report.py
reads each replica's summary as one seed).

  python sweep.py --workdir=runs/fashion_mnist_mlp_width_cpu \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_width_cpu.py
  python report.py runs/fashion_mnist_mlp_width_cpu

Time on the 2-core CPU, per epoch of 60,000 examples and seed: (3000, 1000)
takes about 20 s with SGD and 40 s with SAM, (1200, 400) about 4 s and 8 s,
the three narrow widths a few seconds together. Each run already uses both
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
      'fixed': {'num_epochs': 5, 'lr_boundaries': (0.5, 0.75),
                'num_replicas': 3},
  }
