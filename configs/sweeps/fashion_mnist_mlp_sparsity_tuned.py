"""The CPU sparsity sweep with SAM's rho tuned per sparsity on validation
data: does pruning at initialization make SAM's gain larger once rho is
chosen for each sparse network?

The base width (300, 100) of fashion_mnist_mlp_width_tuned.py (same data,
schedule, seeds and rho grid) pruned by SNIP to sparsity {0, 0.5, 0.8,
0.9, 0.95} of its kernels, with 40% label noise (where SAM gains at this
width) and without. SAM trains five rhos from seeds 0-4 side by side (25
replicas, each rho paired with the SGD run of its seed); SGD trains seeds
0-4 side by side. Per noise level 5 SAM runs and 5 SGD runs, about 40
minutes on a 2-core CPU:

  python sweep.py --workdir=runs/fashion_mnist_mlp_sparsity_tuned \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_sparsity_tuned.py
  python sweep.py --workdir=runs/fashion_mnist_mlp_sparsity_tuned \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_sparsity_tuned.py \
      --sweep='optimizer=[sgd]' --set=num_replicas=5 --set=replica_rho='()' \
      --set=replica_seeds=0
  python report.py runs/fashion_mnist_mlp_sparsity_tuned --tune=rho

report.py chooses, per sparsity and noise level, the rho with the best
mean final validation accuracy and reports the test gain at it, paired by
seed.
"""

from configs.sweeps import fashion_mnist_mlp_width_tuned


def get_sweep():
  sweep = fashion_mnist_mlp_width_tuned.get_sweep()
  sweep['grid'] = {
      'label_noise': [0.4, 0.0],
      'sparsity': [0.0, 0.5, 0.8, 0.9, 0.95],
      'optimizer': ['sam'],
  }
  sweep['fixed'] = {
      **sweep['fixed'],
      'num_neurons': (300, 100),
      'pruner': 'snip',
  }
  return sweep
