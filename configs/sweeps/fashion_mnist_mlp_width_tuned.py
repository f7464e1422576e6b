"""The CPU width sweep with SAM's rho tuned per setting on validation data,
as Shin et al. tune it for every size: one rho for all widths can hide or
invent a trend.

The data, schedule and seeds of fashion_mnist_mlp_width_fit.py (the first
4,000 Fashion-MNIST training examples, a fixed 20% held out for
validation, 100 epochs) at its three narrower widths, (75, 25) to
(300, 100), without label noise and with 40%. SAM trains five rhos from
0.005 to 0.5 from seeds 0-4 side by side (replica_seeds: 25 replicas, each
rho paired with the SGD run of its seed); SGD trains seeds 0-4 side by
side. 12 runs, about 25 minutes on a 2-core CPU
(--sweep='num_neurons=[(1200,400)]' on both commands trains the next
width, about 45 minutes per noise level):

  python sweep.py --workdir=runs/fashion_mnist_mlp_width_tuned \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_width_tuned.py
  python sweep.py --workdir=runs/fashion_mnist_mlp_width_tuned \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_width_tuned.py \
      --sweep='optimizer=[sgd]' --set=num_replicas=5 --set=replica_rho='()' \
      --set=replica_seeds=0
  python report.py runs/fashion_mnist_mlp_width_tuned --tune=rho

'--sweep=label_noise=[0.2]' on both sweep.py commands adds 20% label noise
(6 runs, about 10 minutes).

report.py chooses, per width and noise level, the rho with the best mean
final validation accuracy and reports the test gain at it, paired by seed.
"""

from configs.sweeps import fashion_mnist_mlp_width_fit
from configs.sweeps import mnist_mlp_width

# Two decades, a factor of about 3.16 apart.
RHOS = (0.005, 0.016, 0.05, 0.16, 0.5)
SEEDS = 5


def get_sweep():
  sweep = fashion_mnist_mlp_width_fit.get_sweep()
  sweep['grid'] = {
      'label_noise': [0.0, 0.4],
      'num_neurons': mnist_mlp_width.WIDTHS[:3],
      # One value here; the SGD runs replace it (see the docstring), and
      # it names the runs apart.
      'optimizer': ['sam'],
  }
  sweep['fixed'] = {
      **{k: v for k, v in sweep['fixed'].items() if k != 'rho'},
      'replica_rho': RHOS,
      'replica_seeds': SEEDS,
      'num_replicas': SEEDS * len(RHOS),
  }
  return sweep
