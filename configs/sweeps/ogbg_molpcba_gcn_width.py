"""GCN width sweep on ogbg-molpcba: SAM vs plain Adam against hidden_size.

configs/ogbg_molpcba_gcn.py at hidden_size {64, 128, 300, 600, 1200} (0.04M
to 7.6M parameters), 3 seeds side by side (num_replicas=3): 10 runs, ranked
by test mean average precision. Sized for a GPU.

  python sweep.py --workdir=runs/ogbg_molpcba_gcn_width \
      --sweep_config=configs/sweeps/ogbg_molpcba_gcn_width.py
  python report.py runs/ogbg_molpcba_gcn_width \
      --metric=final_test_average_precision
"""


def get_sweep():
  return {
      'config': 'configs/ogbg_molpcba_gcn.py',
      'grid': {
          'hidden_size': [64, 128, 300, 600, 1200],
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {'num_replicas': 3},
  }
