"""MNIST MLP width sweep (Shin et al., 2025, Figure 1): SAM's gain vs size.

Widths x{0.25, 0.5, 1, 4, 10} of (300, 100), SGD and SAM, 3 seeds: 30 runs
of configs/mnist_mlp.py (100 epochs each).

  python sweep.py --workdir=runs/mnist_mlp_width \
      --sweep_config=configs/sweeps/mnist_mlp_width.py --parallel=2
  python report.py runs/mnist_mlp_width
"""

BASE_WIDTH = (300, 100)
# (75, 25), (150, 50), (300, 100), (1200, 400), (3000, 1000).
WIDTHS = [tuple(int(m * w) for w in BASE_WIDTH) for m in (0.25, 0.5, 1, 4, 10)]


def get_sweep():
  return {
      'config': 'configs/mnist_mlp.py',
      'grid': {
          # Seeds vary slowest, so each finished third of the sweep is a
          # complete width x optimizer comparison.
          'seed': [0, 1, 2],
          'num_neurons': WIDTHS,
          'optimizer': ['sgd', 'sam'],
      },
  }
