"""First half of the fine-tuning pair: the Fashion-MNIST MLP with SGD.

  python main.py --workdir=runs/pretrain \
      --config=configs/fashion_mnist_mlp_pretrain.py
  python main.py --workdir=runs/finetune \
      --config=configs/fashion_mnist_mlp_finetune_sam.py:runs/pretrain
"""

from configs import fashion_mnist_mlp


def get_config():
  config = fashion_mnist_mlp.get_config()
  config.optimizer = 'sgd'
  config.num_epochs = 50
  return config
