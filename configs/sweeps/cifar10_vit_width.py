"""CIFAR-10 ViT width sweep: SAM's gain against hidden_size (Shin et al.,
2025, across model families), SAM vs plain AdamW.

hidden_size {96, 192, 384, 768} (ViT-Ti/2 to ViT-B widths) of
configs/cifar10_vit.py, 3 seeds: 24 runs of 200 epochs; meant for
accelerators.

  python sweep.py --workdir=runs/cifar10_vit_width \
      --sweep_config=configs/sweeps/cifar10_vit_width.py
  python report.py runs/cifar10_vit_width
"""


def get_sweep():
  return {
      'config': 'configs/cifar10_vit.py',
      'grid': {
          'seed': [0, 1, 2],
          'hidden_size': [96, 192, 384, 768],
          'optimizer': ['sgd', 'sam'],
      },
  }
