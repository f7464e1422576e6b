"""A&F's 1-SAM comparison on diagonal linear networks: GD against 1-SAM
(each example its own unnormalized ascent) over their rho grid 0.01, 0.03,
0.1, 0.3 (here twice that: their 1-SAM ascends along the gradient of r_k^2,
ours along that of r_k^2 / 2, docs/regression.md), at their initialization
alpha = 0.02, on 5 draws of the sparse regression (configs/diagonal_net.py).
25 runs, about 4 minutes on a 2-core CPU:

  python sweep.py --workdir=runs/diagonal_net_1_sam \
      --sweep_config=configs/sweeps/diagonal_net_1_sam.py
  python report.py runs/diagonal_net_1_sam
"""


def get_sweep():
  return {
      'config': 'configs/diagonal_net.py',
      'grid': {
          'optimizer': ['sgd', 'sam'],
          'rho': [0.02, 0.06, 0.2, 0.6],
          'seed': [0, 1, 2, 3, 4],
      },
      'fixed': {'init_scale': 0.02, 'sam_m': 1},
  }
