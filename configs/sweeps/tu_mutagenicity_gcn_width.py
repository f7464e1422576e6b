"""GCN width sweep on TU Mutagenicity: SAM vs plain Adam against hidden_size.

configs/tu_mutagenicity_gcn.py at hidden_size {16, 32, 64, 128, 256, 512}
(1.1k to 0.8M parameters), 3 seeds side by side (num_replicas=3): SAM and
plain Adam (optimizer=sgd is the base optimizer alone). The data are the
user's files in DIR (docs/datasets.md). Each run takes minutes on a CPU.

  python sweep.py --workdir=runs/tu_mutagenicity_gcn_width \
      --sweep_config=configs/sweeps/tu_mutagenicity_gcn_width.py
      --set=data_dir=DIR
  python report.py runs/tu_mutagenicity_gcn_width
"""


def get_sweep():
  return {
      'config': 'configs/tu_mutagenicity_gcn.py',
      'grid': {
          'hidden_size': [16, 32, 64, 128, 256, 512],
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {'num_replicas': 3},
  }
