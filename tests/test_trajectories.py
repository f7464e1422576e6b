"""Trajectories pinned to numbers recorded before the code that computes
them was restructured (SAM's variants as modules of the sam package): SGD,
SAM, ASAM, multi-step SAM, m-sharpness and weight decay in the ascent on
the small MLP, two epochs. A restructuring must leave every number as it
was; the tolerance only allows for another CPU's float rounding (on the
machine they were recorded on, the parameters agree to the bit)."""

import jax
import numpy as np
import pytest

from runs import run_state
from tests.conftest import small_config
import train

CASES = {
    'sgd': dict(optimizer='sgd'),
    'sam': dict(optimizer='sam', rho=0.05),
    'asam': dict(optimizer='sam', sam_adaptive=True, rho=0.5),
    'multi_step': dict(optimizer='sam', sam_steps=3),
    'm_sharpness': dict(optimizer='sam', sam_m=20),
    'wd_in_ascent': dict(
        optimizer='sam', sam_weight_decay_in_ascent=True, weight_decay=0.01
    ),
}
# (final train loss, final test loss, sum and sum of squares of the final
# parameters), recorded on 2026-12-06 before the restructuring.
RECORDED = {
    'sgd': (
        1.5936123046875,
        1.56795849609375,
        -6.257193193934654,
        74.67248487996524,
    ),
    'sam': (
        1.6155953369140625,
        1.5844891357421875,
        -13.121373413206129,
        72.72994231223369,
    ),
    'asam': (
        1.694144775390625,
        1.664780517578125,
        -19.530294166965177,
        69.16998122440026,
    ),
    'multi_step': (
        1.614908203125,
        1.5847265625,
        -12.210342551741633,
        72.63909938742776,
    ),
    'm_sharpness': (
        1.6334691162109376,
        1.6059993896484375,
        -14.910168115660781,
        71.05155648023577,
    ),
    'wd_in_ascent': (
        1.65989013671875,
        1.6309283447265626,
        -4.3300161058068625,
        42.87721660451217,
    ),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_the_trajectory_is_the_recorded_one(tmp_path, name):
  summary = train.train_and_evaluate(
      small_config(num_epochs=2, **CASES[name]), str(tmp_path)
  )
  _, state, _ = run_state.load_checkpoint(tmp_path)
  flat = np.concatenate(
      [
          np.ravel(np.asarray(x, np.float64))
          for x in jax.tree.leaves(state.params)
      ]
  )
  measured = (
      summary['final_train_loss'],
      summary['final_test_loss'],
      flat.sum(),
      (flat**2).sum(),
  )
  np.testing.assert_allclose(measured, RECORDED[name], rtol=1e-5)
