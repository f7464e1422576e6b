"""LSTM width sweep on SST-2: SAM vs plain SGD with momentum against
hidden_size.

configs/sst2_lstm.py at hidden_size {32, 64, 128, 256, 512} (0.65M to 12M
parameters, most of them word embeddings, which grow with the width), 3
seeds side by side (num_replicas=3): SAM and plain SGD with momentum
(optimizer=sgd is the base optimizer alone). The data are the user's files
in DIR (docs/datasets.md). Sized for a GPU.

  python sweep.py --workdir=runs/sst2_lstm_width \
      --sweep_config=configs/sweeps/sst2_lstm_width.py
  python report.py runs/sst2_lstm_width
"""


def get_sweep():
  return {
      'config': 'configs/sst2_lstm.py',
      'grid': {
          'hidden_size': [32, 64, 128, 256, 512],
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {'num_replicas': 3},
  }
