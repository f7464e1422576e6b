"""CPU width sweep where every width fits its training set: SGD vs SAM.

Fashion-MNIST restricted to its first 4,000 training examples, of which a
fixed 20% are held out for validation (validation_fraction), so that every
MLP width trains on the same 3,200 examples; the schedule of Shin et al.
(100 epochs, lr 0.1 decayed x0.1 at 25/50/75%). The widths x{1/4, 1/2, 1,
4, 10} of (300, 100), SGD and SAM, 5 seeds side by side (num_replicas=5):
10 runs. SAM's rho, 0.01, was chosen on the validation split alone by
fashion_mnist_mlp_rho_validation.py (the best of 0.01-0.2 at the base
width).

  python sweep.py --workdir=runs/fashion_mnist_mlp_width_fit \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_width_fit.py
  python report.py runs/fashion_mnist_mlp_width_fit
"""

from configs.sweeps import mnist_mlp_width

# Chosen on validation data by fashion_mnist_mlp_rho_validation.py.
RHO = 0.01


def get_sweep():
  return {
      'config': 'configs/fashion_mnist_mlp.py',
      'grid': {
          'num_neurons': mnist_mlp_width.WIDTHS,
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {
          'num_train_examples': 4000,
          'validation_fraction': 0.2,
          'num_epochs': 100,
          'num_replicas': 5,
          'rho': RHO,
      },
  }
