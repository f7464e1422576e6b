"""CIFAR-10, a ViT-S-wide Vision Transformer trained from scratch, SAM
around AdamW: the recipe of the SAM-for-ViT literature at CIFAR scale.

Chen, Hsieh & Gong (ICLR 2022) train ViTs with AdamW (weight decay 0.3 at
ImageNet scale), cosine decay with warmup and SAM (rho 0.05 to 0.2), and
no strong augmentation. Here: 4x4 patches of the 32x32 images (64 tokens
and a class token), hidden_size 384 (ViT-S's width: 6 heads, MLP 1536), 6
blocks, AdamW lr 1e-3 and weight decay 0.05 (decoupled), 10 warmup epochs
then cosine decay over 200 epochs, batch 128, random crops and flips, SAM
rho 0.1. Sweep the width with --config.hidden_size (see
configs/sweeps/cifar10_vit_width.py); meant for accelerators.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'cifar10'
  config.augment = True
  config.model = 'vit'
  config.hidden_size = 384
  config.depth = 6
  config.patch_size = 4
  config.optimizer = 'sam'
  config.rho = 0.1
  config.base_optimizer = 'adamw'
  config.learning_rate = 1e-3
  config.weight_decay = 0.05
  config.batch_size = 128
  config.num_epochs = 200
  config.lr_schedule = 'cosine'
  config.warmup_epochs = 10
  return config
