"""Chooses SAM's rho for the CPU width sweep on validation data only.

The data and schedule of fashion_mnist_mlp_width_fit.py (the first 4,000
Fashion-MNIST training examples, 20% held out for validation, 100 epochs) at
the base width (300, 100). One run trains five rhos side by side
(replica_rho; replica r also uses seed + r), and the three runs start from
seeds 0, 5 and 10, so every rho is trained from three initializations.
Pick the rho with the best mean final validation accuracy:

  python sweep.py --workdir=runs/fashion_mnist_mlp_rho_validation \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_rho_validation.py
  python report.py runs/fashion_mnist_mlp_rho_validation

The test set is not used to choose anything.
"""

RHOS = (0.01, 0.02, 0.05, 0.1, 0.2)


def get_sweep():
  return {
      'config': 'configs/fashion_mnist_mlp.py',
      'grid': {'seed': [0, 5, 10]},
      'fixed': {
          'num_train_examples': 4000,
          'validation_fraction': 0.2,
          'num_epochs': 100,
          'num_neurons': (300, 100),
          'optimizer': 'sam',
          'num_replicas': len(RHOS),
          'replica_rho': RHOS,
      },
  }
