"""Atari 2600 games through the Arcade Learning Environment (Bellemare et
al., 2013; `ale-py`, which ships the ROMs), for `environment='ALE/NAME-v5'`.

Each game is gymnasium's `ALE/NAME-v5` (episodes cut at 108,000 frames)
without sticky actions, as CleanRL's `NoFrameskip-v4` games (the action
chosen is the action played), under the preprocessing of Mnih et al.
(2015) as gymnasium's wrappers implement it: `AtariPreprocessing` (up to 30
no-op actions after a reset, each action repeated on 4 frames and the last
two max-pooled, greyscale, 84x84) and `FrameStackObservation` (the last 4
frames). Unlike CleanRL's, an episode is the whole game (no end at a lost
life) and no FIRE is pressed for the agent after a reset. The agent sees
uint8 frames (84, 84, 4), trains on rewards clipped to their sign and is
scored on the game's own (unclipped) score.

The emulator cannot step inside `jit`, so the environments step on the
host (rl/host.py). Everything that decides their future is saved with the
agent's checkpoint (`Games.snapshot`): the emulator's state with its random
number generator, and how many episodes each environment has finished,
which seeds its next reset; the frames the agent last saw are its
observations. Restored (`Games.restore`), a run continues exactly. (Sticky
actions would break this: the ALE repeats a previous action it does not
let one save.)
"""

import collections
import importlib

import numpy as np

from configuration import config_util

PREFIX = 'ALE/'
INSTALL = 'pip install "ale-py>=0.12.1" "opencv-python-headless>=4.10"'
FRAME_SKIP = 4
STACK = 4
SCREEN = 84
NOOP_MAX = 30
# An episode ends after 108,000 frames (30 minutes of play) at the latest.
MAX_STEPS = 108_000 // FRAME_SKIP
# Room for one serialized emulator state in a checkpoint (Breakout's is
# 14.5 kB).
STATE_BYTES = 1 << 16


def is_atari(name: str) -> bool:
  return name.startswith(PREFIX)


def _gymnasium(name: str):
  """gymnasium with the ALE's games registered; ConfigError naming the
  install when ale-py or OpenCV (the resizing) is missing."""
  try:
    # pylint: disable=g-import-not-at-top
    import ale_py
    import cv2  # noqa: F401  (AtariPreprocessing's resizing)
    import gymnasium
  except ImportError:
    raise config_util.ConfigError(
        f'environment={name!r} needs the Arcade Learning Environment: '
        f'{INSTALL}'
    ) from None
  gymnasium.register_envs(ale_py)
  return gymnasium


def make(name: str):
  """One preprocessed game; ConfigError for a name the ALE does not have."""
  gymnasium = _gymnasium(name)
  games = sorted(k for k in gymnasium.registry if k.startswith(PREFIX))
  config_util.require(
      name in games and name.endswith('-v5'),
      f'unknown Atari game {name!r}; the ALE has e.g. ALE/Breakout-v5, '
      f'ALE/Pong-v5 ({sum(g.endswith("-v5") for g in games)} games as '
      "'ALE/NAME-v5')",
  )
  env = gymnasium.make(name, frameskip=1, repeat_action_probability=0.0)
  env = gymnasium.wrappers.AtariPreprocessing(
      env,
      noop_max=NOOP_MAX,
      frame_skip=FRAME_SKIP,
      screen_size=SCREEN,
      terminal_on_life_loss=False,
      grayscale_obs=True,
  )
  return gymnasium.wrappers.FrameStackObservation(env, STACK)


def _frames(observation: np.ndarray) -> np.ndarray:
  """(stack, height, width) -> (height, width, stack), as the CNN takes."""
  return np.moveaxis(np.asarray(observation), 0, -1)


class Games:
  """Environments on the host, each reset automatically when its episode
  ends (as gymnax's are), from a seed that depends on `seed`, its index and
  how many episodes it has finished."""

  def __init__(self, name: str, count: int, seed: int):
    self._envs = [make(name) for _ in range(count)]
    self._ale_py = importlib.import_module('ale_py')
    self._seed = seed
    self._episodes = np.zeros(count, np.int32)

  @property
  def num_actions(self) -> int:
    return int(self._envs[0].action_space.n)

  def _reset(self, index: int) -> np.ndarray:
    seed = np.random.SeedSequence(
        [self._seed, index, int(self._episodes[index])]
    ).generate_state(1)[0]
    observation, _ = self._envs[index].reset(seed=int(seed))
    return _frames(observation)

  def reset(self) -> np.ndarray:
    """Every environment's first observation [count, 84, 84, 4]."""
    return np.stack([self._reset(i) for i in range(len(self._envs))])

  def step(
      self, actions: np.ndarray, active: np.ndarray | None = None
  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step of each environment (of those `active`): (observations,
    rewards, terminated, truncated), an ended episode's environment already
    reset (and its observation the new episode's first) unless it is
    inactive or `active` is given (evaluation: it stays ended)."""
    observations, rewards, terminated, truncated = [], [], [], []
    for i, (env, action) in enumerate(zip(self._envs, actions)):
      if active is not None and not active[i]:
        observations.append(np.zeros((SCREEN, SCREEN, STACK), np.uint8))
        rewards.append(0.0)
        terminated.append(False)
        truncated.append(False)
        continue
      observation, reward, ended, cut, _ = env.step(int(action))
      observation = _frames(observation)
      if (ended or cut) and active is None:
        self._episodes[i] += 1
        observation = self._reset(i)
      observations.append(observation)
      rewards.append(reward)
      terminated.append(ended)
      truncated.append(cut)
    return (
        np.stack(observations),
        np.asarray(rewards, np.float32),
        np.asarray(terminated),
        np.asarray(truncated),
    )

  def snapshot(self) -> dict[str, np.ndarray]:
    """Everything that decides the environments' future, as arrays for a
    checkpoint (the frames they show are the agent's observations)."""
    emulator = np.zeros((len(self._envs), STATE_BYTES), np.uint8)
    lengths = np.zeros(len(self._envs), np.int32)
    for i, env in enumerate(self._envs):
      state = env.unwrapped.ale.cloneState(include_rng=True).serialize()
      if len(state) > STATE_BYTES:
        raise RuntimeError(
            f'an emulator state of {len(state)} bytes exceeds the '
            f'checkpoint room of {STATE_BYTES}'
        )
      emulator[i, : len(state)] = np.frombuffer(state, np.uint8)
      lengths[i] = len(state)
    return {
        'emulator': emulator,
        'emulator_bytes': lengths,
        'episodes': self._episodes.copy(),
    }

  def restore(
      self, snapshot: dict[str, np.ndarray], observations: np.ndarray
  ) -> None:
    """The environments as `snapshot` and the frames `observations`
    [count, 84, 84, 4] left them."""
    self._episodes = np.asarray(snapshot['episodes'], np.int32).copy()
    for i, env in enumerate(self._envs):
      state = np.asarray(snapshot['emulator'][i])
      state = state[: int(snapshot['emulator_bytes'][i])].tobytes()
      env.unwrapped.ale.restoreState(self._ale_py.ALEState(state))
      env.obs_queue = collections.deque(
          np.moveaxis(np.asarray(observations[i]), -1, 0), maxlen=STACK
      )
