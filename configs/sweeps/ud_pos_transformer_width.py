"""Transformer part-of-speech tagger width sweep on UD English-EWT: SAM vs
plain AdamW against hidden_size (Shin et al.'s embedding sizes 128 to 640,
and 64).

configs/ud_pos_transformer.py at hidden_size {64, 128, 256, 384, 512, 640}
(1.4M to 23M parameters), 3 seeds side by side (num_replicas=3): SAM and
plain AdamW (optimizer=sgd is the base optimizer alone). The data are the
user's files in DIR (docs/datasets.md). Sized for a GPU.

  python sweep.py --workdir=runs/ud_pos_transformer_width \
      --sweep_config=configs/sweeps/ud_pos_transformer_width.py
      --set=data_dir=DIR
  python report.py runs/ud_pos_transformer_width
"""


def get_sweep():
  return {
      'config': 'configs/ud_pos_transformer.py',
      'grid': {
          'hidden_size': [64, 128, 256, 384, 512, 640],
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {'num_replicas': 3},
  }
