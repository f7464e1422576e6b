"""Transformer text classifier width sweep on IMDB: SAM vs plain AdamW
against hidden_size.

configs/imdb_transformer.py at hidden_size {32, 64, 128, 256, 512} (0.7M to
17M parameters, 0.6M to 10M of them word embeddings), 3 seeds side by side
(num_replicas=3): 10 runs. Sized for a GPU.

  python sweep.py --workdir=runs/imdb_transformer_width \
      --sweep_config=configs/sweeps/imdb_transformer_width.py
  python report.py runs/imdb_transformer_width
"""


def get_sweep():
  return {
      'config': 'configs/imdb_transformer.py',
      'grid': {
          'hidden_size': [32, 64, 128, 256, 512],
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {'num_replicas': 3},
  }
