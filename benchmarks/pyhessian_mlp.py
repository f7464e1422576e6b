"""PyHessian's top eigenvalue and trace of an exported MLP (the PyTorch side
of benchmarks/hessian_vs_pyhessian.py; run with the Python that has torch
and pyhessian installed, not this project's).

  python benchmarks/pyhessian_mlp.py EXPORT.npz

EXPORT.npz holds the examples (`inputs`, normalized and flattened;
`labels`) and the Dense layers' `kernel_<i>` [in, out] and `bias_<i>`. The
MLP is ReLU between Dense layers, the loss the mean cross-entropy on all
examples at once, and PyHessian runs as its README shows, with its default
settings (power iteration and Hutchinson to tol=1e-3, at most 100
products). Prints one JSON line: the values, each trace sample, the number
of Hessian-vector products and the seconds of each measurement.
"""

import importlib
import json
import sys
import time

import numpy as np
import torch

# The module (the package's `hessian` is its class), whose global
# hessian_vector_product every product goes through.
pyhessian_module = importlib.import_module('pyhessian.hessian')


def mlp(arrays) -> torch.nn.Module:
  """The exported Dense layers as a torch MLP (kernels transposed to torch's
  [out, in])."""
  layers = []
  num_layers = len([k for k in arrays if k.startswith('kernel_')])
  for i in range(num_layers):
    kernel = arrays[f'kernel_{i}']
    linear = torch.nn.Linear(*kernel.shape)
    linear.weight.data = torch.tensor(kernel.T.copy())
    linear.bias.data = torch.tensor(arrays[f'bias_{i}'])
    layers.append(linear)
    if i < num_layers - 1:
      layers.append(torch.nn.ReLU())
  return torch.nn.Sequential(*layers).eval()


def main(path: str) -> None:
  torch.manual_seed(0)  # PyHessian draws its vectors from torch's generator.
  products = 0
  hvp = pyhessian_module.hessian_vector_product

  def counted_hvp(*args):
    nonlocal products
    products += 1
    return hvp(*args)

  pyhessian_module.hessian_vector_product = counted_hvp
  arrays = np.load(path)
  data = (torch.tensor(arrays['inputs']), torch.tensor(arrays['labels']).long())
  computer = pyhessian_module.hessian(
      mlp(arrays), torch.nn.CrossEntropyLoss(), data=data, cuda=False
  )
  start = time.perf_counter()
  top, _ = computer.eigenvalues(top_n=1)
  eigenvalue_seconds = time.perf_counter() - start
  eigenvalue_products = products
  start = time.perf_counter()
  samples = computer.trace()
  print(
      json.dumps(
          {
              'top_eigenvalue': float(top[0]),
              'eigenvalue_products': eigenvalue_products,
              'eigenvalue_seconds': eigenvalue_seconds,
              'trace_samples': [float(s) for s in samples],
              'trace_products': products - eigenvalue_products,
              'trace_seconds': time.perf_counter() - start,
              'threads': torch.get_num_threads(),
          }
      )
  )


if __name__ == '__main__':
  main(sys.argv[1])
