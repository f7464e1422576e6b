"""The benchmark's measurements on a tiny run, checked against arithmetic."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import conv_gradients
from benchmarks import throughput
from input_pipeline import sources


def test_measure_reports_throughput_and_the_executed_flops():
  rng = np.random.default_rng(0)
  split = sources.Split(
      rng.integers(0, 256, (2048, 28, 28, 1), dtype=np.uint8),
      rng.integers(0, 10, 2048).astype(np.int32),
  )
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
        r['flops_per_step'] * r['examples_per_sec'] / batch / 1e9
    )
  assert sam['model_gflops'] / sam['examples_per_sec'] == pytest.approx(
      2 * sgd['model_gflops'] / sgd['examples_per_sec']
  )


def test_matmul_gflops_is_positive_and_finite():
  assert 0 < throughput.matmul_gflops(0.1, 1) < 1e5


@pytest.mark.parametrize(
    'stride,padding,size',
    [
        (1, ((1, 1), (1, 1)), 6),
        (2, ((1, 1), (1, 1)), 8),
        (2, ((1, 0), (0, 1)), 7),
        (1, ((0, 2), (2, 0)), 5),
    ],
)
def test_hand_written_convolution_gradients_equal_xlas(stride, padding, size):
  """conv_gradients' im2col and NCHW gradients against jax.grad of XLA's
  NHWC convolution, at both strides and with uneven padding."""
  x = jax.random.normal(jax.random.key(0), (2, size, size, 3))
  w = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
  grads = {
      name: conv_gradients.gradient(conv, (stride, stride), padding, {})(x, w)
      for name, conv in conv_gradients.FORMULATIONS.items()
  }
  for name in ('im2col', 'nchw'):
    for got, want in zip(grads[name], grads['xla']):
      np.testing.assert_allclose(
          got, want, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(want)))
      )
  assert (
      conv_gradients.milliseconds(
          conv_gradients.gradient(
              conv_gradients.im2col, (stride, stride), padding, {}
          ),
          x,
          w,
          0.0,
      )
      > 0
  )


def test_variant_costs_are_relative_to_sgd_and_count_the_passes():
  from benchmarks import variant_cost  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  split = sources.Split(
      rng.integers(0, 256, (1024, 28, 28, 1), dtype=np.uint8),
      rng.integers(0, 10, 1024).astype(np.int32),
  )
  table = variant_cost.cost_table(
      'mlp', split, ['sam', 'mesa', 'sam_on'], 0.1, 1
  )
  # SAM-ON needs normalization layers, which the MLP does not have.
  assert list(table) == ['sgd', 'sam', 'mesa']
  assert table['sgd']['time_vs_sgd'] == table['sgd']['flops_vs_sgd'] == 1
  # SAM: two forward and backward passes. MESA: one, plus the teacher's
  # forward pass (a third of a pass) and its distillation term.
  assert table['sam']['flops_vs_sgd'] == pytest.approx(2, rel=0.05)
  assert 1.2 < table['mesa']['flops_vs_sgd'] < 1.6
  assert all(r['examples_per_sec'] > 0 for r in table.values())


@pytest.mark.slow
def test_diagonal_network_benchmark_times_every_method_and_its_baseline():
  from benchmarks import diagonal_vs_numpy  # pylint: disable=g-import-not-at-top

  rows = diagonal_vs_numpy.table(steps=200, steps_per_epoch=100, replicas=3)
  assert list(rows) == [
      'gd',
      'n_sam',
      '1_sam',
      '1_sam_loop',
      'n_sam_grid',
      '1_sam_grid',
  ]
  for row in rows.values():
    assert row['steps_per_sec'] > 0 and row['numpy_steps_per_sec'] > 0
    assert row['speedup'] == pytest.approx(
        row['steps_per_sec'] / row['numpy_steps_per_sec']
    )
  # The reference code's loop over the examples and the vectorized 1-SAM
  # are the same updates.
  assert rows['1_sam_loop']['numpy_final_loss'] == pytest.approx(
      rows['1_sam']['numpy_final_loss'], rel=1e-9
  )
