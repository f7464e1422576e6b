"""Fashion-MNIST MLP (300, 100) with symmetric label noise (Shin et al.).

The noise fraction is the config argument (default 0.25):
  python main.py --workdir=runs/fmnist_noise50_sam \
      --config=configs/fashion_mnist_mlp_label_noise.py:0.5
Add --config.optimizer=sgd for the baseline; the noisy labels depend only on
the seed, so both see the same ones.
"""

from configs import fashion_mnist_mlp


def get_config(label_noise: str = '0.25'):
  config = fashion_mnist_mlp.get_config()
  config.label_noise = float(label_noise)
  config.label_noise_type = 'symmetric'
  return config
