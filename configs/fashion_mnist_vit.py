"""Fashion-MNIST, a Vision Transformer small enough for a CPU.

7x7 patches of the 28x28 images (16 tokens and a class token), hidden_size
64 (one head of 64, MLP 256), 4 blocks: about 0.2M parameters. AdamW lr
1e-3, weight decay 0.05 (decoupled), 2 warmup epochs then cosine decay over
30 epochs, batch 128; SAM rho 0.05. Sweep the width with
--config.hidden_size (configs/sweeps/fashion_mnist_vit_width.py).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'fashion_mnist'
  config.model = 'vit'
  config.hidden_size = 64
  config.depth = 4
  config.patch_size = 7
  config.optimizer = 'sam'
  config.rho = 0.05
  config.base_optimizer = 'adamw'
  config.learning_rate = 1e-3
  config.weight_decay = 0.05
  config.batch_size = 128
  config.num_epochs = 30
  config.lr_schedule = 'cosine'
  config.warmup_epochs = 2
  return config
