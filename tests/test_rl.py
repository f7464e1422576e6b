"""PPO with SAM on gymnax environments: the advantages and the clipped loss
against hand computations, the networks' sizes against Shin et al.'s, the
loop's replicas against separate runs, a stopped run resumed against an
uninterrupted one, every SAM variant on the PPO loss, and the refusals."""

import json
import math
import re
import signal

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

import analyze
from configs import cartpole_ppo
from configs import default
from configuration import config_util
from configuration import validate
from divergence import Diverged
from rl import networks
from rl import ppo
import rl_train
from runs import outcomes
from runs import run_state
import sam
from tests.conftest import run_python
from tests.test_faults import main_py
from tests.test_faults import start
from tests.test_faults import wait_for


def test_advantages_match_the_discounted_sums_of_td_errors():
  # A_t = sum_l (gamma lambda)^l delta_{t+l}, summed up to the episode's end
  # (no term after a done) and, past the rollout, from the last value.
  rng = np.random.default_rng(0)
  steps, envs, gamma, lam = 9, 3, 0.9, 0.8
  rewards = rng.normal(size=(steps, envs))
  values = rng.normal(size=(steps, envs))
  dones = rng.random((steps, envs)) < 0.3
  last_value = rng.normal(size=envs)
  next_values = np.concatenate([values[1:], last_value[None]])
  deltas = rewards + gamma * next_values * (1 - dones) - values
  expected = np.zeros((steps, envs))
  for n in range(envs):
    for t in range(steps):
      for later in range(t, steps):
        expected[t, n] += (gamma * lam) ** (later - t) * deltas[later, n]
        if dones[later, n]:
          break
  advantages, returns = ppo.generalized_advantages(
      *map(jnp.asarray, (rewards, values, dones, last_value)), gamma, lam
  )
  np.testing.assert_allclose(advantages, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(returns, expected + values, rtol=1e-5, atol=1e-6)


def test_the_clipped_loss_on_a_hand_example():
  # Two examples, a uniform policy over 2 actions; the old policy gave the
  # taken actions probabilities that make the ratios 1.5 and 0.5.
  log_half = math.log(0.5)
  batch = ppo.Transitions(
      observations=jnp.zeros((2, 1)),
      actions=jnp.array([0, 1]),
      log_probs=jnp.array([log_half - math.log(1.5), log_half - math.log(0.5)]),
      values=jnp.array([0.0, 2.5]),
      rewards=jnp.zeros(2),
      dones=jnp.zeros(2, bool),
  )
  loss, parts = ppo.ppo_loss(
      logits=jnp.zeros((2, 2)),
      values=jnp.array([1.0, 2.0]),
      batch=batch,
      advantages=jnp.array([3.0, 1.0]),  # Normalized: +1 and -1.
      returns=jnp.array([2.0, 2.0]),
      clip=0.2,
      value_coef=0.5,
      entropy_coef=0.01,
  )
  # Actor: -mean(min(1.5 * 1, 1.2 * 1), min(0.5 * -1, 0.8 * -1)).
  actor = -(1.2 - 0.8) / 2
  # Values move by at most 0.2 from the old ones: 0.2 and 2.3.
  value = 0.5 * (max(1.0, (0.2 - 2) ** 2) + max(0.0, (2.3 - 2) ** 2)) / 2
  entropy = math.log(2)
  # The advantages' std is 1 (+ 1e-8).
  np.testing.assert_allclose(parts['actor_loss'], actor, rtol=1e-6)
  np.testing.assert_allclose(parts['value_loss'], value, rtol=1e-6)
  np.testing.assert_allclose(parts['entropy'], entropy, rtol=1e-6)
  np.testing.assert_allclose(
      loss, actor + 0.5 * value - 0.01 * entropy, rtol=1e-6
  )
  assert float(parts['clipped_fraction']) == 1.0


@pytest.mark.parametrize('width', [0.5, 1.0, 1.5, 2.0])
def test_the_nature_cnn_has_the_papers_sizes_on_atari_frames(width):
  # Shin et al.'s Atari panel: 0.4, 1.7, 3.8 and 6.7M parameters. By hand:
  # each convolution k*k*c_in*c_out + c_out, then 7x7x(64 w) -> 512 w and
  # the heads (6 actions and the value).
  c1, c2, c3, d = (round(n * width) for n in (32, 64, 64, 512))
  expected = (
      (8 * 8 * 4 * c1 + c1)
      + (4 * 4 * c1 * c2 + c2)
      + (3 * 3 * c2 * c3 + c3)
      + (7 * 7 * c3 * d + d)
      + (d * 6 + 6)
      + (d + 1)
  )
  params = networks.NatureCNN(width, 6).init(
      jax.random.key(0), jnp.zeros((1, 84, 84, 4))
  )
  assert run_state.count_params(params) == expected
  assert (
      round(expected / 1e6, 1)
      == {0.5: 0.4, 1.0: 1.7, 1.5: 3.8, 2.0: 6.7}[width]
  )


def tiny(**overrides):
  """CartPole for a few seconds: 3 epochs of 2 rollouts of 4 x 64 steps."""
  config = cartpole_ppo.get_config()
  config.rl_rollout_steps = 64
  config.rl_env_steps_per_epoch = 512
  config.num_epochs = 3
  config.rl_eval_episodes = 4
  config.update(overrides)
  return config


@pytest.fixture(scope='module')
def sam_pair(tmp_path_factory):
  """SAM with two replicas (seeds 0 and 1, rhos 0.05 and 0.1) side by side."""
  workdir = tmp_path_factory.mktemp('rl') / 'pair'
  config = tiny(optimizer='sam', num_replicas=2, replica_rho=(0.05, 0.1))
  summary = rl_train.train_and_evaluate(config, str(workdir))
  return workdir, summary


def test_replicas_are_the_separate_runs(sam_pair, tmp_path):
  workdir, summary = sam_pair
  assert summary['num_replicas'] == 2
  for replica, (seed, rho) in enumerate(((0, 0.05), (1, 0.1))):
    separate = tmp_path / f'seed{seed}'
    rl_train.train_and_evaluate(
        tiny(optimizer='sam', seed=seed, rho=rho), str(separate)
    )
    alone = json.loads((separate / 'summary.json').read_text())
    side_by_side = json.loads(
        (workdir / f'replica_{replica}' / 'summary.json').read_text()
    )
    assert alone['status'] == side_by_side['status'] == outcomes.FINISHED
    for a, b in zip(alone['history'], side_by_side['history']):
      assert a.keys() == b.keys()
      for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, err_msg=key)


def test_four_devices_train_the_replicas_of_one(tmp_path):
  # Four replicas spread over four devices, against the same on one.
  args = [
      '--config=configs/cartpole_ppo.py',
      '--config.rl_rollout_steps=64',
      '--config.rl_env_steps_per_epoch=512',
      '--config.num_epochs=3',
      '--config.num_replicas=4',
  ]
  for devices in (1, 4):
    result = run_python(
        ['main.py', f'--workdir={tmp_path / str(devices)}', *args], devices
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'4 replicas on {devices} of {devices} devices' in result.stderr
  for replica in range(4):
    one, four = (
        json.loads(
            (
                tmp_path / str(d) / f'replica_{replica}' / 'summary.json'
            ).read_text()
        )['history']
        for d in (1, 4)
    )
    for a, b in zip(one, four, strict=True):
      for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, err_msg=key)


def test_a_stopped_run_resumes_where_it_stopped(tmp_path):
  config = tiny(optimizer='sam')
  rl_train.train_and_evaluate(config, str(tmp_path / 'whole'))
  with pytest.raises(outcomes.Stopped, match='end of epoch 1 of 3'):
    rl_train.train_and_evaluate(config, str(tmp_path / 'cut'), lambda: True)
  assert not (tmp_path / 'cut' / 'summary.json').exists()
  rl_train.train_and_evaluate(config, str(tmp_path / 'cut'))
  whole, cut = (
      json.loads((tmp_path / run / 'summary.json').read_text())
      for run in ('whole', 'cut')
  )
  assert cut['history'] == whole['history']
  states = [
      rl_train.load_state(config, tmp_path / run) for run in ('whole', 'cut')
  ]
  flat = [flax.serialization.to_state_dict(s) for s in states]
  jax.tree.map(np.testing.assert_array_equal, flat[0], flat[1])


# SAM-ON perturbs normalization layers, which the agents' networks lack.
@pytest.mark.parametrize(
    'variant',
    sorted(
        name
        for name, variant in sam.VARIANTS.items()
        if not variant.per_example and name != 'sam_on'
    ),
)
def test_every_variant_trains_on_the_ppo_loss(variant, tmp_path):
  config = tiny(
      optimizer='sam',
      sam_variant=variant,
      num_epochs=1,
      rl_env_steps_per_epoch=256,
      ppo_epochs=1,
  )
  summary = rl_train.train_and_evaluate(config, str(tmp_path))
  assert summary['status'] == outcomes.FINISHED
  assert np.isfinite(summary['history'][-1]['train_loss'])


@pytest.mark.parametrize(
    'overrides, error',
    [
        ({'environment': 'Pong-v5'}, "unknown environment 'Pong-v5'"),
        (
            {'environment': 'Pendulum-v1'},
            "environment 'Pendulum-v1' has continuous actions",
        ),
        ({'rl_network': 'nature_cnn'}, 'rl_network=nature_cnn takes frames'),
        ({'rl_network': 'lstm'}, 'rl_network must be one of'),
        ({'batch_size': 64}, 'does not read batch_size; leave them'),
        ({'dataset': 'mnist', 'sparsity': 0.5}, 'not read dataset, sparsity'),
        (
            {'rl_env_steps_per_epoch': 1000},
            'rl_env_steps_per_epoch (1000) must be a positive multiple of a '
            'rollout, rl_num_envs x rl_rollout_steps = 256',
        ),
        ({'ppo_minibatches': 3}, 'ppo_minibatches=3 must divide a rollout'),
        ({'ppo_gamma': 1.5}, 'ppo_gamma must be in [0.0, 1.0]'),
        (
            {'optimizer': 'sam', 'sam_variant': 'esam'},
            "sam_variant=esam works on the batch's examples",
        ),
        (
            {'optimizer': 'sam', 'sam_variant': 'sam_on'},
            'sam_variant=sam_on perturbs normalization layers',
        ),
        ({'num_replicas': 2, 'replica_rho': (0.1,)}, 'replica_rho has 1'),
        ({'analysis_every_epochs': 1}, 'not read analysis_every_epochs'),
        ({'log_spaced_evals': 5}, 'not read log_spaced_evals'),
    ],
)
def test_bad_agents_are_refused_with_one_line(overrides, error):
  with pytest.raises(config_util.ConfigError) as raised:
    validate.check_config(tiny(**overrides))
  assert error in str(raised.value)
  assert '\n' not in str(raised.value)


def test_a_diverging_agent_stops_and_says_so_again(tmp_path):
  # Steps of 1e38 overflow the weights within the first epoch.
  config = tiny(learning_rate=1e38, num_replicas=2)
  for _ in range(2):  # The second time from its summary, without training.
    with pytest.raises(Diverged, match='non-finite in epoch 1'):
      rl_train.train_and_evaluate(config, str(tmp_path))
  summary = json.loads((tmp_path / 'summary.json').read_text())
  assert summary['status'] == outcomes.DIVERGED
  assert summary['diverged_epoch'] == 1
  assert summary['diverged_replicas'] == [0, 1]
  replica = json.loads((tmp_path / 'replica_0' / 'summary.json').read_text())
  assert replica['status'] == outcomes.DIVERGED and replica['history'] == []


def test_analyze_refuses_an_agent_in_one_line(sam_pair):
  workdir, _ = sam_pair
  with pytest.raises(config_util.ConfigError) as raised:
    analyze.analysis_config(str(workdir), default.get_config(), {})
  assert 'trained an agent on CartPole-v1' in str(raised.value)


def _history(workdir):
  return json.loads((workdir / 'summary.json').read_text())['history']


@pytest.mark.slow
def test_cartpole_learns_and_resumes_exactly_after_sigterm_and_kill(tmp_path):
  # The quickstart command with SAM: a return of 400 or more within its
  # default budget; the same run stopped by SIGTERM, or killed with -9 in
  # the middle of an epoch, then resumed, ends with the same history.
  args = ('--config=configs/cartpole_ppo.py', '--config.optimizer=sam')
  code, output = main_py(tmp_path / 'whole', *args)
  assert code == outcomes.EXIT_OK, output[-3000:]
  summary = json.loads((tmp_path / 'whole' / 'summary.json').read_text())
  assert summary['final_return'] >= 400, summary['history'][-1]
  assert summary['best_return'] >= summary['final_return']
  assert re.search(r'done: final test return \S+ \(best', output)
  events = event_accumulator.EventAccumulator(str(tmp_path / 'whole'))
  events.Reload()
  assert {'train/return', 'eval/return', 'train/entropy'} <= set(
      events.Tags()['scalars']
  )
  reference = _history(tmp_path / 'whole')
  for name, stop in (('term', signal.SIGTERM), ('kill', signal.SIGKILL)):
    workdir, log = tmp_path / name, tmp_path / f'{name}.log'
    process = start('main.py', [f'--workdir={workdir}', *args], log)
    wait_for(log, r'epoch 5/30', process)
    process.send_signal(stop)
    assert process.wait(timeout=120) == (
        outcomes.EXIT_STOPPED if stop == signal.SIGTERM else -signal.SIGKILL
    )
    code, output = main_py(workdir, *args)
    assert code == outcomes.EXIT_OK, output[-3000:]
    assert _history(workdir) == reference, name
