"""Atari through the Arcade Learning Environment (rl/atari.py, rl/host.py):
the real games, stepped on the host, resumed exactly from a checkpoint."""

import json
import sys

import flax
import jax
import numpy as np
import pytest

import analyze
from configs import atari_breakout_ppo
from configs import default
from configuration import config_util
from configuration import validate
from rl import analysis as rl_analysis
from rl import atari
from rl import environments
import rl_train
from runs import outcomes
from tests.test_faults import main_py
from tests.test_rl import assert_resumes_after_sigterm_and_kill

GAME = 'ALE/Breakout-v5'


# Breakout for a few seconds an epoch: 2 rollouts of 2 x 16 steps, the
# Nature CNN at a quarter of its width.
TINY = {
    'rl_num_envs': 2,
    'rl_rollout_steps': 16,
    'rl_env_steps_per_epoch': 64,
    'ppo_minibatches': 2,
    'rl_width': 0.25,
    'rl_eval_episodes': 2,
}


def tiny(**overrides):
  """TINY for 2 epochs."""
  config = atari_breakout_ppo.get_config()
  config.update(TINY, num_epochs=2)
  config.update(overrides)
  return config


def _play(games, steps, seed):
  """`steps` steps of random actions: what each step returned."""
  rng = np.random.default_rng(seed)
  return [games.step(rng.integers(0, 4, 8)) for _ in range(steps)]


# With sticky actions (which the ALE cannot save the previous action of)
# the snapshot after 37 steps plays on differently: this test fails.
@pytest.mark.parametrize('before', [37, 200])
def test_restored_games_play_on_exactly(before):
  environment = environments.make(GAME)
  assert environment.observation_shape == (84, 84, 4)
  assert environment.num_actions == 4 and environment.host
  games = atari.Games(GAME, 8, seed=3)
  observations = games.reset()
  assert observations.shape == (8, 84, 84, 4) and observations.dtype == np.uint8
  if before:
    observations = _play(games, before, 0)[-1][0]
  snapshot = games.snapshot()
  # Long enough that episodes end, and the environments reset from the
  # seeds the snapshot's episode counts give.
  ahead = _play(games, 400, 1)
  assert sum(int(np.sum(step[2] | step[3])) for step in ahead) >= 4
  restored = atari.Games(GAME, 8, seed=3)
  restored.reset()
  restored.restore(snapshot, observations)
  again = _play(restored, 400, 1)
  for a, b in zip(ahead, again, strict=True):
    for x, y in zip(a, b):
      np.testing.assert_array_equal(x, y)


@pytest.mark.slow
def test_an_atari_agent_trains_and_resumes_exactly(tmp_path):
  # SAM-Adam on Breakout, stopped after its first epoch and resumed,
  # against the same run uninterrupted: the same history and the same
  # final state, the emulators' included.
  config = tiny(optimizer='sam')
  whole = rl_train.train_and_evaluate(config, str(tmp_path / 'whole'))
  assert whole['status'] == outcomes.FINISHED
  assert whole['num_params'] == 107_565
  with pytest.raises(outcomes.Stopped, match='end of epoch 1 of 2'):
    rl_train.train_and_evaluate(config, str(tmp_path / 'cut'), lambda: True)
  rl_train.train_and_evaluate(config, str(tmp_path / 'cut'))
  histories = [
      json.loads((tmp_path / run / 'summary.json').read_text())['history']
      for run in ('whole', 'cut')
  ]
  assert histories[0] == histories[1]
  states = [
      flax.serialization.to_state_dict(
          rl_analysis.load(config, tmp_path / run)[0]
      )
      for run in ('whole', 'cut')
  ]
  jax.tree.map(np.testing.assert_array_equal, states[0], states[1])


@pytest.mark.slow
def test_an_atari_run_resumes_exactly_after_sigterm_and_kill(tmp_path):
  # main.py on Breakout (6 short epochs of SAM-Adam), stopped by SIGTERM
  # or killed with -9 while its games step on the host, then resumed: the
  # same history as the run never interrupted.
  args = [
      '--config=configs/atari_breakout_ppo.py',
      '--config.optimizer=sam',
      *(f'--config.{k}={v}' for k, v in TINY.items()),
      '--config.num_epochs=6',
  ]
  code, output = main_py(tmp_path / 'whole', *args)
  assert code == outcomes.EXIT_OK, output[-3000:]
  assert_resumes_after_sigterm_and_kill(tmp_path, args, r'epoch 2/6')


@pytest.mark.slow
def test_atari_replicas_are_the_separate_runs(tmp_path):
  together = tiny(num_replicas=2, num_epochs=1)
  rl_train.train_and_evaluate(together, str(tmp_path / 'pair'))
  for replica in range(2):
    alone = tiny(seed=replica, num_epochs=1)
    rl_train.train_and_evaluate(alone, str(tmp_path / str(replica)))
    a, b = (
        json.loads(path.read_text())['history']
        for path in (
            tmp_path / str(replica) / 'summary.json',
            tmp_path / 'pair' / f'replica_{replica}' / 'summary.json',
        )
    )
    for x, y in zip(a, b, strict=True):
      assert x.keys() == y.keys()
      for key in x:
        if x[key] is None:  # No training episode ended.
          assert y[key] is None, key
        else:
          np.testing.assert_allclose(x[key], y[key], rtol=1e-4, err_msg=key)


@pytest.mark.parametrize(
    'module, overrides, error',
    [
        (
            'ale_py',
            {},
            "environment='ALE/Breakout-v5' needs the Arcade Learning "
            f'Environment: {atari.INSTALL}',
        ),
        (
            None,
            {'environment': 'ALE/NoSuchGame-v5'},
            "unknown Atari game 'ALE/NoSuchGame-v5'; the ALE has e.g. "
            'ALE/Breakout-v5, ALE/Pong-v5',
        ),
    ],
)
def test_atari_configs_that_cannot_run_are_refused_in_one_line(
    monkeypatch, module, overrides, error
):
  if module:
    # None in sys.modules makes the import raise ImportError, as on a
    # machine without the package.
    monkeypatch.setitem(sys.modules, module, None)
  with pytest.raises(config_util.ConfigError) as raised:
    validate.check_config(tiny(**overrides))
  assert str(raised.value).startswith(error)
  assert '\n' not in str(raised.value)


def test_analyze_refuses_an_atari_agent_in_one_line(tmp_path):
  # Before anything is loaded: the run's config alone.
  (tmp_path / 'config.json').write_text(json.dumps(tiny().to_dict()))
  with pytest.raises(config_util.ConfigError) as raised:
    analyze.run(
        str(tmp_path),
        analyze.analysis_config(str(tmp_path), default.get_config(), {}),
    )
  assert str(raised.value) == (
      'ALE/Breakout-v5 steps on the host; analyze.py measures agents of '
      'gymnax environments, whose rollouts it collects inside jit'
  )
