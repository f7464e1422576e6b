"""analyze.py on an agent: the Hessian, sharpness and landscape of its PPO
loss on a rollout from its checkpoint (rl/analysis.py), against the exact
Hessian of that loss."""

import json

import jax
from jax.flatten_util import ravel_pytree
import numpy as np
import pytest

import analyze
from configs import default
from configuration import config_util
from rl import agent as agents
from rl import analysis as rl_analysis
from rl import ppo
import rl_train
from tests.conftest import run_python
from tests.test_rl import tiny


@pytest.fixture(scope='module')
def small_agent(tmp_path_factory):
  """SAM on CartPole for one epoch, towers of 8 (a Hessian small enough to
  form: 251 parameters)."""
  workdir = tmp_path_factory.mktemp('rl_analysis') / 'agent'
  config = tiny(optimizer='sam', num_neurons=(8, 8), num_epochs=1)
  rl_train.train_and_evaluate(config, str(workdir))
  return workdir, config


def analysis_config(workdir, **settings):
  flag_config = default.get_config()
  flag_config.analysis.update(settings)
  return analyze.analysis_config(
      str(workdir),
      flag_config,
      {f'analysis.{k}': v for k, v in settings.items()},
  )


def test_the_ppo_hessian_is_the_exact_one(small_agent):
  workdir, config = small_agent
  settings = dict(
      parts=('hessian',),
      num_examples=256,
      top_k=3,
      lanczos_iterations=100,
      lanczos_tolerance=1e-5,
      hutchinson_probes=300,
      trace_tolerance=0.0,
      slq_probes=0,
  )
  (results,) = analyze.run(str(workdir), analysis_config(workdir, **settings))

  # The same rollout, and the loss and its exact Hessian formed directly
  # from the network and rl/ppo.py.
  state, _ = rl_analysis.load(config, workdir)
  state = jax.tree.map(lambda x: x[0], state)
  agent = agents.Agent(config)
  transitions, advantages, returns = rl_analysis.rollout(agent, state, 256, 0)
  flat, unravel = ravel_pytree(state.params)

  def loss(flat_params):
    logits, values = agent.network.apply(
        unravel(flat_params), transitions.observations
    )
    return ppo.ppo_loss(
        logits,
        values,
        transitions,
        advantages,
        returns,
        config.ppo_clip,
        config.ppo_value_coef,
        config.ppo_entropy_coef,
    )[0]

  exact_hessian = np.asarray(jax.hessian(loss)(flat), np.float64)
  eigenvalues = np.linalg.eigvalsh(exact_hessian)
  scale = np.abs(eigenvalues).max()

  assert results['num_params'] == flat.size == 251
  np.testing.assert_allclose(results['loss'], loss(flat), rtol=1e-5)
  # At the checkpoint every ratio is 1: the surrogate is -mean(normalized
  # advantage) = 0, and the value loss is half the mean squared advantage.
  assert abs(results['actor_loss']) < 1e-6
  np.testing.assert_allclose(
      results['value_loss'], 0.5 * np.mean(np.square(advantages)), rtol=1e-5
  )
  assert results['clipped_fraction'] == 0
  hessian = results['hessian']
  np.testing.assert_allclose(
      hessian['top_eigenvalues'], eigenvalues[::-1][:3], atol=1e-3 * scale
  )
  np.testing.assert_allclose(
      hessian['most_negative_eigenvalue'], eigenvalues[0], atol=1e-3 * scale
  )
  assert hessian['trace_probes'] == 300
  assert abs(hessian['trace'] - eigenvalues.sum()) < 4 * hessian['trace_stderr']


def test_the_rollout_continues_from_the_checkpoint(small_agent):
  workdir, config = small_agent
  state, _ = rl_analysis.load(config, workdir)
  state = jax.tree.map(lambda x: x[0], state)
  agent = agents.Agent(config)
  first, again, other = (
      rl_analysis.rollout(agent, state, 256, seed) for seed in (0, 0, 1)
  )
  jax.tree.map(np.testing.assert_array_equal, first, again)
  assert not np.array_equal(first[0].actions, other[0].actions)
  # The environments' observations at the checkpoint start the rollout.
  observations = np.asarray(first[0].observations)
  for row in np.asarray(state.observations):
    assert np.any(np.all(observations == row, axis=1))
  assert observations.shape == (256, 4)


@pytest.mark.parametrize(
    'settings, interpolate_to, error',
    [
        (
            {'parts': ('stability',)},
            None,
            "analysis.parts ('stability',): the PPO loss of an agent is "
            'measured by hessian, sharpness, landscape',
        ),
        (
            {'num_examples': 254},
            None,
            'analysis.num_examples (254 transitions) must be a multiple of '
            'rl_num_envs (4): the rollout steps every environment alike',
        ),
        (
            {},
            'other',
            '--interpolate_to is for supervised runs; an agent is analyzed '
            'alone',
        ),
    ],
)
def test_what_an_agent_cannot_be_measured_by_is_refused(
    small_agent, settings, interpolate_to, error
):
  workdir, _ = small_agent
  config = analysis_config(workdir, **settings)
  with pytest.raises(config_util.ConfigError) as raised:
    analyze.run(str(workdir), config, interpolate_to)
  assert str(raised.value) == error


@pytest.mark.slow
def test_analyze_py_measures_every_replica_of_an_agents_sweep(tmp_path):
  # Two replicas in a sweep's directory: each gets its analysis, with the
  # figures and TensorBoard scalars; a second call skips them.
  run = tmp_path / 'sweep' / 'optimizer=sam'
  rl_train.train_and_evaluate(
      tiny(optimizer='sam', num_replicas=2, num_epochs=1), str(run)
  )
  command = [
      'analyze.py',
      f'--workdir={tmp_path / "sweep"}',
      '--config.analysis.num_examples=512',
      '--config.analysis.landscape_points=5',
      '--config.analysis.landscape_2d_points=3',
      '--config.analysis.hutchinson_probes=20',
      '--config.analysis.slq_probes=2',
  ]
  result = run_python(command, check=True)
  for replica in (0, 1):
    outdir = run / f'replica_{replica}' / 'analysis'
    results = json.loads((outdir / 'analysis.json').read_text())
    assert results['hessian']['top_eigenvalues'][0] > 0
    assert results['sharpness']['one_step'] > 0
    assert 'm_sharpness' in results['sharpness']
    assert len(np.load(outdir / 'landscape_1d.npz')['loss']) == 5
    for name in ('spectral_density.png', 'landscape_1d.png'):
      assert (outdir / name).exists()
    assert list(outdir.glob('events.out.tfevents.*'))
  result = run_python(command, check=True)
  assert f'skipped (analyzed): {run}' in result.stdout
