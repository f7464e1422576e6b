"""CPU ViT width sweep on Fashion-MNIST: SAM vs plain AdamW against
hidden_size.

configs/fashion_mnist_vit.py on the first 4,000 training examples (20% held
out for validation), hidden_size {16, 32, 64, 128} (14k to 0.8M
parameters), 3 seeds side by side (num_replicas=3): 8 runs.

  python sweep.py --workdir=runs/fashion_mnist_vit_width \
      --sweep_config=configs/sweeps/fashion_mnist_vit_width.py
  python report.py runs/fashion_mnist_vit_width
"""


def get_sweep():
  return {
      'config': 'configs/fashion_mnist_vit.py',
      'grid': {
          'hidden_size': [16, 32, 64, 128],
          'optimizer': ['sgd', 'sam'],
      },
      'fixed': {
          'num_train_examples': 4000,
          'validation_fraction': 0.2,
          'num_replicas': 3,
      },
  }
