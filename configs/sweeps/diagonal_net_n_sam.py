"""A&F's n-SAM comparison on diagonal linear networks: GD against n-SAM
(one unnormalized ascent on the whole batch) over their rho grid, at their
initialization alpha = 0.1, on 5 draws of the sparse regression
(configs/diagonal_net.py; seed s draws the data, so GD and n-SAM of one seed
share it and report.py pairs them). 30 runs (GD is trained once per seed),
about 5 minutes on a 2-core CPU:

  python sweep.py --workdir=runs/diagonal_net_n_sam \
      --sweep_config=configs/sweeps/diagonal_net_n_sam.py
  python report.py runs/diagonal_net_n_sam
"""


def get_sweep():
  return {
      'config': 'configs/diagonal_net.py',
      'grid': {
          'optimizer': ['sgd', 'sam'],
          'rho': [0.01, 0.03, 0.1, 0.3, 1.0],
          'seed': [0, 1, 2, 3, 4],
      },
      'fixed': {'init_scale': 0.1, 'sam_m': 0},
  }
