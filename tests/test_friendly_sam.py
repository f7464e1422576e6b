"""Friendly SAM (sam_variant='friendly_sam'): five steps of SGD with its
gradient against the recursion computed by hand on a quadratic (the
running mean of gradients removed from the ascent), and sigma = 0 is SAM."""

import numpy as np
import pytest

from tests import variant_harness as harness


def by_hand(problem, sigma, decay, rho, lr, num_steps):
  w, m, path = problem.w, None, []
  for _ in range(num_steps):
    g = problem.gradient(w)
    if m is None:
      d, m = g, g
    else:
      d, m = g - sigma * m, decay * m + (1 - decay) * g
    w = w - lr * problem.gradient(w + rho * d / np.linalg.norm(d))
    path.append(w)
  return np.array(path)


@pytest.mark.parametrize('sigma,decay', [(1.0, 0.6), (0.5, 0.9)])
def test_friendly_sam_steps_match_the_recursion(sigma, decay):
  problem = harness.Quadratic(seed=6)
  config = harness.config_for(
      'friendly_sam',
      rho=0.3,
      sam_friendly_sigma=sigma,
      sam_friendly_lambda=decay,
  )
  np.testing.assert_allclose(
      harness.sgd_with_variant(problem, config, 5, lr=0.05),
      by_hand(problem, sigma, decay, 0.3, 0.05, 5),
      rtol=2e-5,
      atol=2e-6,
  )


def test_friendly_sam_with_sigma_zero_is_sam():
  problem = harness.Quadratic(seed=7)
  np.testing.assert_allclose(
      harness.sgd_with_variant(
          problem, harness.config_for('friendly_sam', sam_friendly_sigma=0.0), 3
      ),
      harness.sgd_with_variant(problem, harness.config_for('sam'), 3),
      rtol=1e-6,
  )
