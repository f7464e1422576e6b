"""Fisher SAM (sam_variant='fisher_sam'): its step against the formula
computed by hand on a quadratic, SAM at eta = 0, and a bad eta refused."""

import numpy as np
import pytest

from configuration import config_util
from configuration import validate
import sam
from tests import variant_harness as harness


@pytest.mark.parametrize('eta', [0.0, 1.0, 25.0])
def test_fisher_sam_descends_at_the_fisher_ball_maximizer(eta):
  problem = harness.Quadratic()
  config = harness.config_for('fisher_sam', rho=0.2, sam_fisher_eta=eta)
  g = problem.gradient(problem.w)
  inverse_fisher_g = g / (1 + eta * g**2)
  e = 0.2 * inverse_fisher_g / np.sqrt(g @ inverse_fisher_g)
  result = sam.get('fisher_sam').gradient(
      harness.oracle(problem, config, problem.w)
  )
  np.testing.assert_allclose(
      problem.flat(result.descent), problem.gradient(problem.w + e), rtol=1e-5
  )
  # e lies on the boundary of the Fisher ball: e^T F e = rho^2.
  np.testing.assert_allclose(e @ ((1 + eta * g**2) * e), 0.2**2, rtol=1e-9)
  assert float(result.clean) == pytest.approx(problem.w[0], rel=1e-6)


def test_fisher_sam_at_eta_zero_is_sam():
  problem = harness.Quadratic(seed=3)
  config = harness.config_for('fisher_sam', rho=0.3, sam_fisher_eta=0.0)
  fisher = sam.get('fisher_sam').gradient(
      harness.oracle(problem, config, problem.w)
  )
  plain, _, _ = sam.sam_gradient(problem.grad_fn, problem.tree(problem.w), 0.3)
  np.testing.assert_allclose(
      problem.flat(fisher.descent), problem.flat(plain), rtol=1e-6
  )


def test_a_negative_eta_is_refused():
  with pytest.raises(config_util.ConfigError, match='sam_fisher_eta'):
    validate.check_config(harness.config_for('fisher_sam', sam_fisher_eta=-1.0))
