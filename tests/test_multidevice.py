"""The training loop on 4 virtual CPU devices against a single device."""

import json

import numpy as np
import pytest

from tests.conftest import run_python

METRICS = ('train_loss', 'train_accuracy', 'test_loss', 'test_accuracy')


def train_with(devices, optimizer, tmp_path):
  out = tmp_path / f'{optimizer}_{devices}.npz'
  run_python(['-m', 'tests.multidevice_worker', str(out),
              str(tmp_path / f'run_{optimizer}_{devices}'), optimizer],
             devices=devices, check=True)
  result = dict(np.load(out))
  result['history'] = json.loads(str(result['history']))
  assert int(result['devices']) == devices
  return result


def params(result):
  return [result[k] for k in sorted(result, key=lambda k: (len(k), k))
          if k.isdigit()]


def test_sgd_on_four_devices_follows_the_single_device_trajectory(tmp_path):
  one = train_with(1, 'sgd', tmp_path)
  four = train_with(4, 'sgd', tmp_path)
  # The global batch, its order and the mean gradient do not depend on the
  # device count; only the summation order of floats does.
  for a, b in zip(params(one), params(four)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  for a, b in zip(one['history'], four['history']):
    for key in METRICS:
      assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5)


def test_sam_ascends_per_device_and_averages_the_descent(tmp_path):
  four = train_with(4, 'sam', tmp_path)
  # One step by hand: SAM on each device's 25 examples, gradients averaged.
  assert 0 <= float(four['by_hand']) < 1e-5
  one = train_with(1, 'sam', tmp_path)
  # m = 25 vs m = 100 is a different algorithm: the runs must differ.
  assert any(not np.allclose(a, b, atol=1e-4)
             for a, b in zip(params(one), params(four)))
