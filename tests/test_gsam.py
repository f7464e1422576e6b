"""GSAM (sam_variant='gsam'): its step against the decomposition computed
by hand on a quadratic; alpha = 0 is SAM; the descent keeps the SAM
gradient's component and removes alpha times the orthogonal part."""

import numpy as np
import pytest

import sam
from tests import variant_harness as harness


@pytest.mark.parametrize('alpha', [0.0, 0.1, 0.4])
def test_gsam_descends_with_g_p_minus_alpha_times_g_perp(alpha):
  problem = harness.Quadratic(seed=2)
  config = harness.config_for('gsam', rho=0.3, sam_gsam_alpha=alpha)
  g = problem.gradient(problem.w)
  g_p = problem.gradient(problem.w + 0.3 * g / np.linalg.norm(g))
  g_perp = g - (g @ g_p) / (g_p @ g_p) * g_p
  result = sam.get('gsam').gradient(harness.oracle(problem, config, problem.w))
  descent = problem.flat(result.descent)
  np.testing.assert_allclose(descent, g_p - alpha * g_perp, rtol=1e-5)
  # g_perp is orthogonal to g_p: the descent's component along g_p is SAM's.
  np.testing.assert_allclose(descent @ g_p, g_p @ g_p, rtol=1e-5)
