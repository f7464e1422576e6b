"""USAM (sam_variant='usam'): its step against the hand derivation on a
quadratic, and a run that trains with it."""

import numpy as np
import pytest

import sam
from tests.conftest import small_config
from tests.test_sam import quadratic
import train


@pytest.mark.parametrize('rho,wd', [(0.05, 0.0), (0.5, 0.0), (0.3, 0.1)])
def test_usam_descends_with_the_gradient_at_w_plus_rho_g(rho, wd):
  a, b, params, flat, grad_fn = quadratic()
  w = np.asarray(flat(params))
  d = a @ w - b + wd * w  # The ascent direction, unnormalized.
  expected = a @ (w + rho * d) - b
  config = small_config(
      optimizer='sam',
      sam_variant='usam',
      rho=rho,
      weight_decay=wd,
      sam_weight_decay_in_ascent=bool(wd),
  )
  grads, aux, *_ = sam.get('usam').gradient(
      sam.Oracle(
          grad_fn=grad_fn,
          params=params,
          rho=rho,
          config=config,
          step=0,
          learning_rate=0.1,
      )
  )
  np.testing.assert_allclose(flat(grads), expected, rtol=1e-5)
  assert aux == 'aux-at-' + str(float(w[0]))  # The clean pass's.


def test_usam_trains(tmp_path):
  summary = train.train_and_evaluate(
      small_config(optimizer='sam', sam_variant='usam', rho=0.05, num_epochs=2),
      str(tmp_path),
  )
  losses = [h['train_loss'] for h in summary['history']]
  assert losses[1] < losses[0] and summary['config']['sam_variant'] == 'usam'
