"""The benchmark's measurements on a tiny run, checked against arithmetic."""

import numpy as np
import pytest

from benchmarks import throughput
from input_pipeline import sources


def test_measure_reports_throughput_and_the_executed_flops():
  rng = np.random.default_rng(0)
  split = sources.Split(
      rng.integers(0, 256, (2048, 28, 28, 1), dtype=np.uint8),
      rng.integers(0, 10, 2048).astype(np.int32))
  sgd = throughput.measure(throughput.mlp_config('sgd'), split, 0.2, 1)
  sam = throughput.measure(throughput.mlp_config('sam'), split, 0.2, 1)
  batch, weights = 128, 784 * 300 + 300 * 100 + 100 * 10
  # Matmuls: forward and weight gradients of every layer, input gradients
  # of all but the first (nothing differentiates the images).
  matmul_flops = 2 * batch * (2 * weights + 300 * 100 + 100 * 10)
  assert sgd['flops_per_step'] == pytest.approx(matmul_flops, rel=0.05)
  assert sam['flops_per_step'] == pytest.approx(2 * matmul_flops, rel=0.05)
  for r in (sgd, sam):
    assert r['examples_per_sec'] > 0
    assert r['gflops'] == pytest.approx(
        r['flops_per_step'] * r['examples_per_sec'] / batch / 1e9)
  assert sam['model_gflops'] / sam['examples_per_sec'] == pytest.approx(
      2 * sgd['model_gflops'] / sgd['examples_per_sec'])


def test_matmul_gflops_is_positive_and_finite():
  assert 0 < throughput.matmul_gflops(0.1, 1) < 1e5
