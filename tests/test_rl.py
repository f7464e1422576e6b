"""PPO with SAM on gymnax environments: the advantages and the clipped loss
against hand computations, the networks' sizes against Shin et al.'s, the
loop's replicas against separate runs, a stopped run resumed against an
uninterrupted one, every SAM variant on the PPO loss, and the refusals."""

import json
import logging
import os
import re
import signal
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tensorboard.backend.event_processing import event_accumulator

from configs import cartpole_ppo
from configuration import config_util
from configuration import validate
from divergence import Diverged
from rl import agent as agents
from rl import analysis as rl_analysis
from rl import environments
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
from tests.test_xla_cpu import PRINT_POOL_THREADS


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
  # Four examples, one per case of the surrogate's min: ratios 1.5 and 0.5
  # with advantages +1 and -1 (already normalized: mean 0, std 1).
  logits = np.array([[0.0, 1.0], [2.0, 0.0], [0.5, -0.5], [1.0, 3.0]])
  actions = np.array([1, 0, 1, 0])
  ratios = np.array([1.5, 1.5, 0.5, 0.5])
  advantages = np.array([1.0, -1.0, 1.0, -1.0])
  log_policy = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  log_probs = log_policy[np.arange(4), actions]
  # New values, old values, returns: the value clip binds in the first and
  # last examples; the unclipped error is the larger in the third.
  values = np.array([1.0, 2.0, 2.0, 3.0])
  old_values = np.array([0.0, 2.1, 0.0, 3.5])
  returns = np.array([2.0, 2.0, 0.0, 1.0])
  batch = ppo.Transitions(
      observations=jnp.zeros((4, 1)),
      actions=jnp.asarray(actions),
      log_probs=jnp.asarray(log_probs - np.log(ratios), jnp.float32),
      values=jnp.asarray(old_values, jnp.float32),
      rewards=jnp.zeros(4),
      dones=jnp.zeros(4, bool),
  )
  loss, parts = ppo.ppo_loss(
      jnp.asarray(logits, jnp.float32),
      jnp.asarray(values, jnp.float32),
      batch,
      jnp.asarray(advantages, jnp.float32),
      jnp.asarray(returns, jnp.float32),
      clip=0.2,
      value_coef=0.5,
      entropy_coef=0.01,
  )
  # min(r A, clip(r) A): 1.2 (clipped), -1.5, 0.5, -0.8 (clipped).
  actor = -(1.2 - 1.5 + 0.5 - 0.8) / 4
  # Values moved at most 0.2 from the old ones: 0.2, 2.0, 0.2, 3.3.
  value = 0.5 * (3.24 + 0.0 + 4.0 + 5.29) / 4
  entropy = -(np.exp(log_policy) * log_policy).sum(1).mean()
  np.testing.assert_allclose(parts['actor_loss'], actor, rtol=1e-5)
  np.testing.assert_allclose(parts['value_loss'], value, rtol=1e-5)
  np.testing.assert_allclose(parts['entropy'], entropy, rtol=1e-5)
  np.testing.assert_allclose(
      loss, actor + 0.5 * value - 0.01 * entropy, rtol=1e-5
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


def _minibatch(agent, key, size=16):
  """Random transitions of CartPole's shapes, with advantages and returns."""
  keys = jax.random.split(key, 6)
  transitions = ppo.Transitions(
      observations=jax.random.normal(keys[0], (size, 4)),
      actions=jax.random.randint(keys[1], (size,), 0, 2),
      log_probs=jnp.log(jax.random.uniform(keys[2], (size,), minval=0.3)),
      values=jax.random.normal(keys[3], (size,)),
      rewards=jnp.zeros(size),
      dones=jnp.zeros(size, bool),
  )
  return (
      transitions,
      jax.random.normal(keys[4], (size,)),
      jax.random.normal(keys[5], (size,)),
  )


@pytest.mark.parametrize('optimizer', ['sgd', 'sam'])
def test_a_minibatch_update_by_hand(optimizer):
  # g = grad L(w); with SAM, g = grad L(w + rho g / ||g||); clipped to norm
  # 0.5. Adam alone: its first step, -lr g / (|g| + eps) elementwise. SAM on
  # plain SGD, whose step -lr g keeps the difference between the two
  # gradients (Adam's first step is nearly sign(g) for both).
  rho = 0.3
  if optimizer == 'sam':
    config = tiny(
        optimizer='sam', base_optimizer='sgd', momentum=0.0, learning_rate=0.1
    )
    step = lambda d: config.learning_rate * d
  else:
    config = tiny()
    step = lambda d: config.learning_rate * d / (jnp.abs(d) + 1e-5)
  agent = agents.Agent(config)
  state = agent.initial_state(0)
  minibatch = _minibatch(agent, jax.random.key(1))
  transitions, advantages, returns = minibatch

  def loss(params):
    logits, values = agent.network.apply(params, transitions.observations)
    return ppo.ppo_loss(
        logits, values, transitions, advantages, returns, 0.2, 0.5, 0.01
    )[0]

  def clipped(g):
    return jax.tree.map(lambda d: d * min(1.0, 0.5 / optax.global_norm(g)), g)

  w = state.params
  g = jax.grad(loss)(w)
  if optimizer == 'sam':
    norm = optax.global_norm(g)
    g_plain = g
    g = jax.grad(loss)(jax.tree.map(lambda p, d: p + rho * d / norm, w, g))
    assert optax.global_norm(
        jax.tree.map(jnp.subtract, clipped(g), clipped(g_plain))
    ) > 1e-3 * optax.global_norm(clipped(g))
  expected = jax.tree.map(lambda p, d: p - step(d), w, clipped(g))
  updated, parts = agent._minibatch_update(rho, state, minibatch)
  jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
      updated.params,
      expected,
  )
  assert int(updated.step) == 1
  np.testing.assert_allclose(parts['loss'], loss(w), rtol=1e-6)


def test_evaluation_and_training_returns_follow_the_episodes():
  # CartPole pays 1 per step: an episode's return is its length. The
  # evaluation against a Python loop over each episode (same keys), the
  # training returns against the rollout's rewards and ends.
  config = tiny(rl_eval_episodes=3)
  agent = agents.Agent(config)
  state = agent.initial_state(0)
  env = agent.env
  keys = jax.random.split(
      jax.random.key(environments.EVALUATION_SEED), config.rl_eval_episodes
  )
  expected = []
  for key in keys:
    observation, env_state = env.env.reset(key, env.params)
    total, t, done = 0.0, 0, False
    while not done and t < env.max_steps:
      action_key, env_key = jax.random.split(jax.random.fold_in(key, t))
      logits, _ = agent.network.apply(state.params, observation[None])
      action = jax.random.categorical(action_key, logits[0])
      observation, env_state, reward, terminated, truncated, _ = env.env.step(
          env_key, env_state, action, env.params
      )
      total, t = total + float(reward), t + 1
      done = bool(terminated | truncated)
    expected.append(total)
  np.testing.assert_allclose(
      agent._evaluate(state.params), np.mean(expected), rtol=1e-6
  )

  steps = 300
  _, (transitions, (return_sums, counts)) = jax.lax.scan(
      agent._act, state, None, length=steps
  )
  rewards, dones = np.asarray(transitions.rewards), np.asarray(
      transitions.dones
  )
  running, finished = np.zeros(config.rl_num_envs), []
  for t in range(steps):
    running += rewards[t]
    finished += list(running[dones[t]])
    running[dones[t]] = 0.0
  assert finished and int(np.sum(counts)) == len(finished)
  np.testing.assert_allclose(np.sum(return_sums), np.sum(finished))


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
    for a, b in zip(alone['history'], side_by_side['history'], strict=True):
      assert a.keys() == b.keys()
      for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, err_msg=key)


@pytest.mark.parametrize(
    'replicas, placement',
    [
        (4, '4 replicas on 4 of 4 devices'),
        (1, '1 replica, its 4 environments split over 4 devices'),
    ],
)
def test_four_devices_train_what_one_does(replicas, placement, tmp_path):
  # SAM-Adam: four replicas spread over four devices, and one replica's
  # four environments split over them, against the same on one device;
  # every placement, the single device's included, compiles its epoch once
  # (the states are placed as the epoch's outputs are, so the second epoch
  # reuses the first's program).
  args = [
      '--config=configs/cartpole_ppo.py',
      '--config.optimizer=sam',
      '--config.rl_rollout_steps=64',
      '--config.rl_env_steps_per_epoch=512',
      '--config.num_epochs=3',
      f'--config.num_replicas={replicas}',
  ]
  for devices in (1, 4):
    result = run_python(
        ['main.py', f'--workdir={tmp_path / str(devices)}', *args],
        devices,
        env={'JAX_LOG_COMPILES': '1'},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (placement if devices == 4 else 'on 1 of 1 device.') in result.stderr
    assert result.stderr.count('Compiling jit(epoch)') == 1, devices
  for replica in range(replicas):
    one, four = (
        json.loads(
            (
                tmp_path / str(d) / f'replica_{replica}' / 'summary.json'
                if replicas > 1
                else tmp_path / str(d) / 'summary.json'
            ).read_text()
        )['history']
        for d in (1, 4)
    )
    for a, b in zip(one, four, strict=True):
      for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, err_msg=key)


@pytest.mark.slow
def test_one_replica_split_over_four_devices_resumes_exactly(tmp_path):
  # Stopped after its first epoch and resumed on 4 devices, against the
  # same run uninterrupted on 4 devices: the same history, bit for bit.
  code = f"""
import json
from rl import agent as agents
import rl_train
from runs import outcomes
from tests.test_rl import tiny
config = tiny()
rl_train.train_and_evaluate(config, '{tmp_path}/whole')
try:
  rl_train.train_and_evaluate(config, '{tmp_path}/cut', lambda: True)
except outcomes.Stopped:
  pass
rl_train.train_and_evaluate(config, '{tmp_path}/cut')
agent = agents.Agent(config)
print(agent.place(agent.initial_states([0]))[1])
"""
  result = run_python(['-c', code], 4, check=True)
  assert '1 replica, its 4 environments split over 4 devices' in result.stdout
  whole, cut = (
      json.loads((tmp_path / run / 'summary.json').read_text())['history']
      for run in ('whole', 'cut')
  )
  assert len(whole) == 3 and cut == whole


def test_cpu_threads_changes_the_speed_not_the_run(tmp_path):
  # main.py sizes XLA:CPU's pool before JAX starts: one thread, and one
  # more than the cores (never the default), each train with exactly that
  # many pool threads (counted in the process once main.py is done), log
  # it, warn of nothing, and train SAM-Adam bit for bit alike.
  main_then_count = f"""
import runpy, sys
sys.argv = ['main.py', *sys.argv[1:]]
try:
  runpy.run_path('main.py', run_name='__main__')
finally:
  {PRINT_POOL_THREADS}
"""
  histories = []
  for threads in (1, len(os.sched_getaffinity(0)) + 1):
    result = run_python(
        [
            '-c',
            main_then_count,
            f'--workdir={tmp_path / str(threads)}',
            '--config=configs/cartpole_ppo.py',
            '--config.optimizer=sam',
            '--config.rl_rollout_steps=64',
            '--config.rl_env_steps_per_epoch=512',
            '--config.num_epochs=2',
            '--config.rl_eval_episodes=2',
            f'--config.cpu_threads={threads}',
        ]
    )
    assert result.returncode == outcomes.EXIT_OK, result.stderr[-3000:]
    assert f'pool threads: {threads}\n' in result.stdout
    assert f'XLA:CPU threads: {threads}\n' in result.stderr
    assert 'not applied' not in result.stderr
    histories.append(_history(tmp_path / str(threads)))
  assert json.dumps(histories[0]) == json.dumps(histories[1])


def test_a_stopped_run_resumes_where_it_stopped(tmp_path, caplog):
  config = tiny(optimizer='sam')
  rl_train.train_and_evaluate(config, str(tmp_path / 'whole'))
  with pytest.raises(outcomes.Stopped, match='end of epoch 1 of 3'):
    rl_train.train_and_evaluate(config, str(tmp_path / 'cut'), lambda: True)
  assert not (tmp_path / 'cut' / 'summary.json').exists()
  with caplog.at_level(logging.INFO):
    rl_train.train_and_evaluate(config, str(tmp_path / 'cut'))
  assert 'Resumed from the checkpoint at the end of epoch 1.' in caplog.text
  whole, cut = (
      json.loads((tmp_path / run / 'summary.json').read_text())
      for run in ('whole', 'cut')
  )
  assert cut['history'] == whole['history']
  states = [
      rl_analysis.load(config, tmp_path / run)[0] for run in ('whole', 'cut')
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
            'sam_variant=sam_on perturbs normalization layers, which the '
            "agents' networks do not have",
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


def test_without_gymnax_an_agent_is_refused_with_the_install_line(
    monkeypatch,
):
  # None in sys.modules makes `import gymnax` raise ImportError, as on a
  # machine without it.
  monkeypatch.setitem(sys.modules, 'gymnax', None)
  with pytest.raises(config_util.ConfigError) as raised:
    validate.check_config(tiny())
  assert str(raised.value) == (
      'environment=\'CartPole-v1\' needs gymnax: pip install "gymnax>=1.0.1"'
  )


def _history(workdir):
  return json.loads((workdir / 'summary.json').read_text())['history']


def assert_resumes_after_sigterm_and_kill(tmp_path, args, began):
  """main.py with `args`, stopped by SIGTERM and killed with -9 once its
  log matches `began`, then run again: each says it resumed and ends with
  the history of the uninterrupted run in tmp_path/whole. (Compared as JSON
  text, bit for bit: an epoch in which no training episode ended has a NaN
  return, which == would call unequal to itself.)"""
  history = lambda workdir: json.dumps(_history(workdir))
  reference = history(tmp_path / 'whole')
  for name, stop in (('term', signal.SIGTERM), ('kill', signal.SIGKILL)):
    workdir, log = tmp_path / name, tmp_path / f'{name}.log'
    process = start('main.py', [f'--workdir={workdir}', *args], log)
    wait_for(log, began, process)
    process.send_signal(stop)
    assert process.wait(timeout=120) == (
        outcomes.EXIT_STOPPED if stop == signal.SIGTERM else -signal.SIGKILL
    )
    code, output = main_py(workdir, *args)
    assert code == outcomes.EXIT_OK, output[-3000:]
    assert 'Resumed from the checkpoint at the end of epoch' in output
    assert history(workdir) == reference, name


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
  assert_resumes_after_sigterm_and_kill(tmp_path, args, r'epoch 5/30')
