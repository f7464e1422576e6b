"""The training loop on 4 virtual CPU devices against a single device."""

import json

import numpy as np
import pytest

from tests.conftest import run_python

METRICS = ('train_loss', 'train_accuracy', 'test_loss', 'test_accuracy')


def train_with(devices, tmp_path, **overrides):
  name = '_'.join(f'{k}{v}' for k, v in overrides.items()) + f'_{devices}'
  out = tmp_path / f'{name}.npz'
  run_python(
      [
          '-m',
          'tests.multidevice_worker',
          str(out),
          str(tmp_path / name),
          json.dumps(overrides),
      ],
      devices=devices,
      check=True,
  )
  result = dict(np.load(out))
  result['history'] = json.loads(str(result['history']))
  assert int(result['devices']) == devices
  return result


def params(result):
  return [
      result[k]
      for k in sorted(result, key=lambda k: (len(k), k))
      if k.isdigit()
  ]


def test_sgd_on_four_devices_follows_the_single_device_trajectory(tmp_path):
  one = train_with(1, tmp_path, optimizer='sgd')
  four = train_with(4, tmp_path, optimizer='sgd')
  # The global batch, its order and the mean gradient do not depend on the
  # device count; only the summation order of floats does.
  assert_same_run(one, four)


def assert_same_run(a, b):
  for x, y in zip(params(a), params(b)):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
  for x, y in zip(a['history'], b['history']):
    for key in METRICS:
      assert x[key] == pytest.approx(y[key], rel=1e-4, abs=1e-5)


@pytest.mark.slow
def test_sam_ascends_per_device_and_m_sharpness_ignores_devices(tmp_path):
  # Default: each of 4 devices ascends on its own 25 examples. Checked by
  # hand for the first step: SAM on each quarter batch, then averaged.
  per_device = train_with(4, tmp_path, optimizer='sam')
  assert 0 <= float(per_device['by_hand']) < 1e-5
  # sam_m=25 splits the batch into the same four micro-batches whatever the
  # device count: 1 and 4 devices follow the per-device run's trajectory.
  m_one = train_with(1, tmp_path, optimizer='sam', sam_m=25)
  m_four = train_with(4, tmp_path, optimizer='sam', sam_m=25)
  assert_same_run(m_one, m_four)
  assert_same_run(m_one, per_device)
  # Per-device ascent on one device (m = 100) is another algorithm.
  whole = train_with(1, tmp_path, optimizer='sam')
  assert any(
      not np.allclose(a, b, atol=1e-4)
      for a, b in zip(params(whole), params(per_device))
  )


@pytest.mark.slow
@pytest.mark.parametrize(
    'variant',
    [
        # No ascent, a teacher averaged from replicated weights.
        dict(sam_variant='mesa', sam_mesa_start_epoch=1, sam_mesa_decay=0.9),
        # The same noise on every device, then the mean gradient.
        dict(sam_variant='rwp', sam_rwp_sigma=0.05),
    ],
)
def test_variants_without_a_per_device_ascent_ignore_devices(tmp_path, variant):
  # Their gradient is a mean over the batch, their state the same on every
  # device: 1 and 4 devices follow one trajectory, the state included.
  one = train_with(1, tmp_path, optimizer='sam', **variant)
  four = train_with(4, tmp_path, optimizer='sam', **variant)
  assert len(params(one)) > 3  # Parameters and state.
  assert_same_run(one, four)
