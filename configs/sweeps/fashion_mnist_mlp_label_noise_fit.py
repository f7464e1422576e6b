"""CPU label-noise sweep: SAM's gain against width with 20% and 40% of the
training labels replaced by random ones (symmetric noise).

The data, schedule, rho and seeds of fashion_mnist_mlp_width_fit.py at its
four narrower widths, label_noise {0.2, 0.4}: 16 runs. Run it into the
width sweep's directory, whose runs are its label_noise=0 points, so that
one report covers all three noise levels (gain against width per noise
level, and against noise per width):

  python sweep.py --workdir=runs/fashion_mnist_mlp_width_fit \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_label_noise_fit.py
  python report.py runs/fashion_mnist_mlp_width_fit

The validation split is held out before the noise is drawn, and rho stays
the one chosen without noise.
"""

from configs.sweeps import fashion_mnist_mlp_width_fit
from configs.sweeps import mnist_mlp_width


def get_sweep():
  sweep = fashion_mnist_mlp_width_fit.get_sweep()
  sweep['grid'] = {
      'label_noise': [0.2, 0.4],
      'num_neurons': mnist_mlp_width.WIDTHS[:4],
      'optimizer': ['sgd', 'sam'],
  }
  return sweep
