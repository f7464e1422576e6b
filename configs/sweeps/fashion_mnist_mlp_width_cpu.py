"""Fashion-MNIST MLP width sweep sized for a 2-core CPU: 20 to 30 minutes.

The widths of mnist_mlp_width.py, SGD and SAM, 3 seeds: 30 runs of
configs/fashion_mnist_mlp.py shortened to 8 epochs (lr x0.1 at 50% and 75%).

  python sweep.py --workdir=runs/fashion_mnist_mlp_width_cpu \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_width_cpu.py
  python report.py runs/fashion_mnist_mlp_width_cpu

Time, from 2-epoch runs on the 2-core CPU while other work shared it (the
(300, 100) SGD run reached 69,000 examples/s, about half its idle speed):
per 60,000-example epoch, (3000, 1000) took 13 s with SGD and 31 s with SAM,
(1200, 400) 3.6 s and 7.6 s, the three narrow widths 2.5 s together. That is
~60 s per epoch for one seed of all ten settings, ~24 minutes for 3 seeds x
8 epochs, plus ~9 s of start-up, compilation and evaluation per run
(~4.5 minutes): ~28 minutes when shared, ~20 on an idle machine. Each run
already uses both cores, so --parallel=2 gains little here.
"""

from configs.sweeps import mnist_mlp_width


def get_sweep():
  return {
      'config': 'configs/fashion_mnist_mlp.py',
      'grid': {
          'seed': [0, 1, 2],
          'num_neurons': mnist_mlp_width.WIDTHS,
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {'num_epochs': 8, 'lr_boundaries': (0.5, 0.75)},
  }
