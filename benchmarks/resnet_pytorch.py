"""PyTorch eager's training throughput for the CIFAR ResNet-18 of
models/resnet.py (the PyTorch side of benchmarks/resnet_vs_pytorch.py; run
with a Python that has torch installed, not this project's).

  python benchmarks/resnet_pytorch.py --num_filters=16 --batch_size=128 \
      [--image_shape=32,32,3] [--channels_last] [--min_seconds=4] \
      [--repeats=2]

The same network as model=resnet18: a 3x3 stem, four stages of two basic
blocks of widths num_filters x (1, 2, 4, 8), BatchNorm (momentum 0.1 in
PyTorch's convention, eps 1e-5), 1x1 projection shortcuts, global average
pooling and a linear classifier, trained with SGD (momentum 0.9, weight
decay 5e-4) on random batches of `--image_shape` (height, width, channels:
CIFAR's 32,32,3 or Fashion-MNIST's 28,28,1) already on the device (no data
loading or augmentation). SAM is the two-pass step of the most used
PyTorch implementation (github.com/davda54/sam): ascend to w + rho g/||g||,
take the gradient there, step from w. Prints one JSON line of images/s
(the best of `--repeats` timings of `--min_seconds` each).
"""

import argparse
import json
import time

import torch
from torch import nn


class BasicBlock(nn.Module):

  def __init__(self, inputs: int, filters: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(inputs, filters, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(filters)
    self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(filters)
    self.shortcut = nn.Sequential()
    if stride != 1 or inputs != filters:
      self.shortcut = nn.Sequential(
          nn.Conv2d(inputs, filters, 1, stride, bias=False),
          nn.BatchNorm2d(filters),
      )

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return torch.relu(y + self.shortcut(x))


def resnet18(
    num_filters: int, channels: int, num_classes: int = 10
) -> nn.Module:
  layers = [
      nn.Conv2d(channels, num_filters, 3, 1, 1, bias=False),
      nn.BatchNorm2d(num_filters),
      nn.ReLU(),
  ]
  inputs = num_filters
  for stage in range(4):
    filters = num_filters * 2**stage
    for block in range(2):
      layers.append(
          BasicBlock(inputs, filters, 2 if stage > 0 and block == 0 else 1)
      )
      inputs = filters
  layers += [
      nn.AdaptiveAvgPool2d(1),
      nn.Flatten(),
      nn.Linear(inputs, num_classes),
  ]
  return nn.Sequential(*layers)


def sam_step(model, optimizer, images, labels, rho: float) -> None:
  """davda54/sam's first_step, second forward/backward, second_step."""
  nn.functional.cross_entropy(model(images), labels).backward()
  params = [p for p in model.parameters() if p.grad is not None]
  norm = torch.norm(torch.stack([p.grad.norm(2) for p in params]), 2)
  perturbations = []
  with torch.no_grad():
    for p in params:
      e = p.grad * (rho / (norm + 1e-12))
      p.add_(e)
      perturbations.append(e)
  optimizer.zero_grad()
  nn.functional.cross_entropy(model(images), labels).backward()
  with torch.no_grad():
    for p, e in zip(params, perturbations):
      p.sub_(e)
  optimizer.step()
  optimizer.zero_grad()


def sgd_step(model, optimizer, images, labels) -> None:
  nn.functional.cross_entropy(model(images), labels).backward()
  optimizer.step()
  optimizer.zero_grad()


def images_per_second(
    step, batch_size: int, min_seconds: float, repeats: int
) -> float:
  for _ in range(3):  # Warm-up.
    step()
  best = 0.0
  for _ in range(repeats):
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
      step()
      steps += 1
    best = max(best, steps * batch_size / (time.perf_counter() - start))
  return best


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--num_filters', type=int, default=16)
  parser.add_argument('--batch_size', type=int, default=128)
  parser.add_argument(
      '--image_shape', default='32,32,3', help='height,width,channels'
  )
  parser.add_argument('--channels_last', action='store_true')
  parser.add_argument('--min_seconds', type=float, default=4.0)
  parser.add_argument('--repeats', type=int, default=2)
  args = parser.parse_args()
  torch.manual_seed(0)
  memory_format = (
      torch.channels_last if args.channels_last else torch.contiguous_format
  )
  height, width, channels = map(int, args.image_shape.split(','))
  model = (
      resnet18(args.num_filters, channels)
      .to(memory_format=memory_format)
      .train()
  )
  optimizer = torch.optim.SGD(
      model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4
  )
  images = torch.randn(args.batch_size, channels, height, width).to(
      memory_format=memory_format
  )
  labels = torch.randint(0, 10, (args.batch_size,))
  results = {
      'threads': torch.get_num_threads(),
      'channels_last': args.channels_last,
  }
  for name, step in (
      ('sgd', lambda: sgd_step(model, optimizer, images, labels)),
      ('sam', lambda: sam_step(model, optimizer, images, labels, 0.05)),
  ):
    results[name] = images_per_second(
        step, args.batch_size, args.min_seconds, args.repeats
    )
  print(json.dumps(results))


if __name__ == '__main__':
  main()
