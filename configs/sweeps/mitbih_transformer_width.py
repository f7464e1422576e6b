"""Time-series Transformer width sweep on MIT-BIH heartbeats: SAM vs plain
Adam against hidden_size.

configs/mitbih_transformer.py at hidden_size {16, 32, 64, 128, 256} (7k to
1.6M parameters), 3 seeds side by side (num_replicas=3): SAM and plain Adam
(optimizer=sgd is the base optimizer alone). The data are the user's files
in DIR (docs/datasets.md). Sized for a GPU.

  python sweep.py --workdir=runs/mitbih_transformer_width \
      --sweep_config=configs/sweeps/mitbih_transformer_width.py
      --set=data_dir=DIR
  python report.py runs/mitbih_transformer_width
"""


def get_sweep():
  return {
      'config': 'configs/mitbih_transformer.py',
      'grid': {
          'hidden_size': [16, 32, 64, 128, 256],
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {'num_replicas': 3},
  }
