"""VaSSO (sam_variant='vasso'): five steps of SGD with its gradient against
the recursion computed by hand on a quadratic (the average of gradients
carried from step to step), and theta = 1 is SAM."""

import numpy as np
import pytest

from tests import variant_harness as harness


def by_hand(problem, theta, rho, lr, num_steps):
  w, d, path = problem.w, None, []
  for _ in range(num_steps):
    g = problem.gradient(w)
    d = g if d is None else (1 - theta) * d + theta * g
    w = w - lr * problem.gradient(w + rho * d / np.linalg.norm(d))
    path.append(w)
  return np.array(path)


@pytest.mark.parametrize('theta', [0.4, 0.9, 1.0])
def test_vasso_steps_match_the_recursion(theta):
  problem = harness.Quadratic(seed=4)
  config = harness.config_for('vasso', rho=0.3, sam_vasso_theta=theta)
  np.testing.assert_allclose(
      harness.sgd_with_variant(problem, config, 5, lr=0.05),
      by_hand(problem, theta, 0.3, 0.05, 5),
      rtol=2e-5,
      atol=2e-6,
  )


def test_vasso_with_theta_one_is_sam():
  problem = harness.Quadratic(seed=5)
  np.testing.assert_allclose(
      harness.sgd_with_variant(
          problem, harness.config_for('vasso', sam_vasso_theta=1.0), 3
      ),
      harness.sgd_with_variant(problem, harness.config_for('sam'), 3),
      rtol=1e-6,
  )
