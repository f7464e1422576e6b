"""LookSAM (sam_variant='looksam'): seven steps of SGD with its gradient
against the schedule computed by hand on a quadratic (SAM's gradient and a
new g_v every k-th step, g + alpha ||g||/||g_v|| g_v in between), and
k = 1 is SAM."""

import numpy as np
import pytest

from tests import variant_harness as harness


def by_hand(problem, k, alpha, rho, lr, num_steps):
  w, g_v, path = problem.w, np.zeros_like(problem.w), []
  for step in range(num_steps):
    g = problem.gradient(w)
    if step % k == 0:
      g_s = problem.gradient(w + rho * g / np.linalg.norm(g))
      g_v = g_s - (g @ g_s) / (g @ g) * g
      descent = g_s
    else:
      descent = g + alpha * np.linalg.norm(g) / np.linalg.norm(g_v) * g_v
    w = w - lr * descent
    path.append(w)
  return np.array(path)


@pytest.mark.parametrize('k,alpha', [(3, 0.7), (2, 0.2)])
def test_looksam_steps_match_the_schedule(k, alpha):
  problem = harness.Quadratic(seed=8)
  config = harness.config_for(
      'looksam', rho=0.4, sam_looksam_k=k, sam_looksam_alpha=alpha
  )
  np.testing.assert_allclose(
      harness.sgd_with_variant(problem, config, 7, lr=0.05),
      by_hand(problem, k, alpha, 0.4, 0.05, 7),
      rtol=2e-5,
      atol=2e-6,
  )


def test_looksam_with_k_one_is_sam():
  problem = harness.Quadratic(seed=9)
  np.testing.assert_allclose(
      harness.sgd_with_variant(
          problem, harness.config_for('looksam', sam_looksam_k=1), 3
      ),
      harness.sgd_with_variant(problem, harness.config_for('sam'), 3),
      rtol=1e-6,
  )
