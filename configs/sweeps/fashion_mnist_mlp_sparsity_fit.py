"""CPU sparsity sweep: SAM's gain as SNIP prunes the base MLP at
initialization.

The data, schedule, rho and seeds of fashion_mnist_mlp_width_fit.py at the
base width (300, 100), pruned by SNIP to sparsity {0, 0.5, 0.8, 0.9, 0.95}
of its kernels: 10 runs.

  python sweep.py --workdir=runs/fashion_mnist_mlp_sparsity_fit \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_sparsity_fit.py
  python report.py runs/fashion_mnist_mlp_sparsity_fit
"""

from configs.sweeps import fashion_mnist_mlp_width_fit


def get_sweep():
  sweep = fashion_mnist_mlp_width_fit.get_sweep()
  sweep['grid'] = {
      'sparsity': [0.0, 0.5, 0.8, 0.9, 0.95],
      'optimizer': ['sgd', 'sam'],
  }
  sweep['fixed'] = {
      **sweep['fixed'],
      'num_neurons': (300, 100),
      'pruner': 'snip',
  }
  return sweep
