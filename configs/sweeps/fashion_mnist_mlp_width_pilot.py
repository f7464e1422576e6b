"""Pilot of a CPU width sweep where every width can fit its training set.

Fashion-MNIST restricted to its first 4,000 training examples, of which a
fixed 20% are held out for validation (validation_fraction), so that every
MLP width trains on the same 3,200 examples for 40 epochs. The widths of
mnist_mlp_width.py, SGD and SAM (rho 0.05), 5 seeds side by side
(num_replicas=5): 10 runs.

  python sweep.py --workdir=runs/fashion_mnist_mlp_width_pilot \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_width_pilot.py
  python report.py runs/fashion_mnist_mlp_width_pilot

Measured on the 2-core CPU: 16 min 36 s in all (the (3000, 1000) runs
4.6 min with SGD, 6.9 min with SAM). After 40 epochs the final training
accuracy (epoch mean) ranges from 91% (narrowest, SAM) to 98% (widest,
SGD): the narrow widths do not yet fit the 3,200 examples, so a full
experiment needs more epochs.
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
          'num_train_examples': 4000,
          'validation_fraction': 0.2,
          'num_epochs': 40,
          'num_replicas': 5,
      },
  }
