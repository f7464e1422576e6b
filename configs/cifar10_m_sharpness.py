"""m-sharpness on CIFAR-10 (Andriushchenko & Flammarion, 2022).

Pre-activation ResNet-18 with GroupNorm (so the ascent of a micro-batch does
not depend on the rest of the batch), SAM whose ascent is taken on
micro-batches of m examples; m is the config argument (default 16):
  --config=configs/cifar10_m_sharpness.py:4
Smaller m generalizes better at the same rho; m does not depend on the
number of devices.
"""

from configs import cifar10_resnet18


def get_config(m: str = '16'):
  config = cifar10_resnet18.get_config()
  config.model = 'preact_resnet18'
  config.norm = 'group'
  config.optimizer = 'sam'
  config.sam_m = int(m)
  config.rho = 0.1
  return config
