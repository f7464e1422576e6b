r"""PPO's environment steps per second: this framework's training (Adam, and
SAM-Adam) against PureJaxRL's `purejaxrl/ppo.py` with the same network,
hyperparameters and number of environment steps.

  python -m benchmarks.ppo_vs_purejaxrl --purejaxrl_dir=PATH \
      [--envs=CartPole-v1,Breakout-MinAtar] [--cpu_threads=N] [--json=FILE]

PATH is a checkout of https://github.com/luchris429/purejaxrl (not a
dependency; its ppo.py needs `pip install distrax`). Its `make_train` runs
unmodified, with two adapters this benchmark puts in front of it: its
wrappers.py imports brax and navix for other environments (stand-in modules
here; the gymnax wrappers do not use them), and it was written for gymnax's
earlier step API (obs, state, reward, done, info), which gymnax 1.0 splits
into terminated and truncated: done = terminated or truncated, as our PPO
uses, and info = {'discount'}, as that API's.

Both train the network PureJaxRL's ppo.py builds (separate 64-64 tanh
towers for the policy and the value, on flattened observations), Adam with
eps 1e-5 at a learning rate annealed linearly to 0, gradients clipped to
norm 0.5, 4 passes of the rollout in minibatches. CartPole-v1 uses
PureJaxRL's CartPole settings (4 environments x 128 steps, 4 minibatches,
2.5e-4); Breakout-MinAtar 64 environments x 128 steps, 8 minibatches and
5e-4. Ours: main.py's training of the same config, `env_steps_per_sec` of
its summary.json (the steady state: the first epoch, which compiles, and
the evaluation episodes excluded). PureJaxRL's: its whole training, one
compiled call, timed after compilation. Each is the fastest of --repeats
runs; the ratio is ours over theirs.

The last column compares the compiled programs alone, in one process: our
epoch (one replica, as main.py compiles it) against PureJaxRL's training of
the same number of steps, called in turn for --interleave_seconds, each the
median of its calls. Interleaving cancels the drift of a shared machine,
which separate runs do not; and it leaves out our per-epoch host work (the
checkpoint, the records, the evaluation).

--cpu_threads sizes XLA:CPU's thread pool for both programs and every
environment of the run, as config.cpu_threads does for main.py (the pool
is sized once per process): configs/cartpole_ppo.py trains on one thread,
the MinAtar config on one per core, so time each environment as its config
trains it with a run of its own. The threads column says what a row
used.
"""

import importlib
import json
import pathlib
import statistics
import sys
import tempfile
import time
import types

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections

from configs import cartpole_ppo
from rl import agent as agent_lib
import rl_train
from runtime import xla_cpu

flags.DEFINE_string(
    'purejaxrl_dir', None, 'A checkout of PureJaxRL (its root).'
)
flags.DEFINE_list(
    'envs', ['CartPole-v1', 'Breakout-MinAtar'], 'gymnax environments.'
)
flags.DEFINE_integer(
    'epochs', 16, 'Epochs (of ours) to time; the first compiles.'
)
flags.DEFINE_integer(
    'repeats',
    2,
    'Runs of each; the fastest counts (the first run of a '
    'process is often slower on CPU).',
)
flags.DEFINE_float(
    'interleave_seconds',
    40.0,
    'How long to call the two compiled programs in turn (0: skip).',
)
flags.DEFINE_integer(
    'cpu_threads',
    0,
    "Threads of XLA:CPU's pool for both (config.cpu_threads; 0: XLA's "
    'default).',
    lower_bound=0,
)
flags.DEFINE_string('json', None, 'Also write the table as JSON here.')
FLAGS = flags.FLAGS

# (environments, steps per rollout, minibatches, learning rate, env steps
# per epoch) of each environment.
SETTINGS = {
    'CartPole-v1': (4, 128, 4, 2.5e-4, 65_536),
    'Breakout-MinAtar': (64, 128, 8, 5e-4, 131_072),
}


def config_for(env: str, optimizer: str) -> ml_collections.ConfigDict:
  envs, steps, minibatches, learning_rate, per_epoch = SETTINGS[env]
  config = cartpole_ppo.get_config()
  config.environment = env
  config.rl_num_envs = envs
  config.rl_rollout_steps = steps
  config.ppo_minibatches = minibatches
  config.learning_rate = learning_rate
  config.rl_env_steps_per_epoch = per_epoch
  config.rl_eval_episodes = 1
  config.num_epochs = FLAGS.epochs
  config.optimizer = optimizer
  config.cpu_threads = FLAGS.cpu_threads
  return config


def ours(config: ml_collections.ConfigDict) -> float:
  """Steady environment steps per second of main.py's training."""
  with tempfile.TemporaryDirectory() as workdir:
    summary = rl_train.train_and_evaluate(config, workdir)
  return summary['env_steps_per_sec']


class _StepApi:
  """gymnax 1.0's environment with the step API PureJaxRL was written for."""

  def __init__(self, env):
    self._env = env

  def __getattr__(self, name):
    return getattr(self._env, name)

  def step(self, key, state, action, params=None):
    obs, state, reward, terminated, truncated, info = self._env.step(
        key, state, action, params
    )
    # The info of that API: gymnax 1.0 adds each step's final observation,
    # which PureJaxRL's rollouts would then store (400 floats a step on
    # MinAtar).
    return (
        obs,
        state,
        reward,
        terminated | truncated,
        {'discount': info['discount']},
    )


def purejaxrl_make_train(root: pathlib.Path):
  """PureJaxRL's make_train, importable without brax and navix, on gymnax
  1.0."""
  for name in (
      'brax',
      'brax.envs',
      'brax.envs.wrappers',
      'brax.envs.wrappers.training',
      'navix',
  ):
    module = sys.modules.setdefault(name, types.ModuleType(name))
    module.envs = module.EpisodeWrapper = module.AutoResetWrapper = None
  sys.path.insert(0, str(root / 'purejaxrl'))
  try:
    ppo = importlib.import_module('ppo')
  except ImportError as e:
    raise SystemExit(
        f'error: PureJaxRL needs {e.name}: pip install distrax'
    ) from None
  make = ppo.gymnax.make
  ppo.gymnax = types.SimpleNamespace(
      make=lambda name: (lambda env, params: (_StepApi(env), params))(
          *make(name)
      )
  )
  return ppo.make_train


def purejaxrl_train(make_train, config: ml_collections.ConfigDict, steps: int):
  """PureJaxRL's training of `steps` environment steps, compiled, and its
  key."""
  train = jax.jit(
      make_train(
          {
              'LR': config.learning_rate,
              'NUM_ENVS': config.rl_num_envs,
              'NUM_STEPS': config.rl_rollout_steps,
              'TOTAL_TIMESTEPS': steps,
              'UPDATE_EPOCHS': config.ppo_epochs,
              'NUM_MINIBATCHES': config.ppo_minibatches,
              'GAMMA': config.ppo_gamma,
              'GAE_LAMBDA': config.ppo_gae_lambda,
              'CLIP_EPS': config.ppo_clip,
              'ENT_COEF': config.ppo_entropy_coef,
              'VF_COEF': config.ppo_value_coef,
              'MAX_GRAD_NORM': config.ppo_max_grad_norm,
              'ACTIVATION': 'tanh',
              'ENV_NAME': config.environment,
              'ANNEAL_LR': True,
          }
      )
  )
  key = jax.random.PRNGKey(0)
  return train.lower(key).compile(), key


def theirs(make_train, config: ml_collections.ConfigDict) -> float:
  """Environment steps per second of PureJaxRL's compiled training."""
  total = config.rl_env_steps_per_epoch * (config.num_epochs - 1)
  compiled, key = purejaxrl_train(make_train, config, total)
  start = time.perf_counter()
  jax.block_until_ready(compiled(key))
  return total / (time.perf_counter() - start)


def compiled_in_turn(make_train, config: ml_collections.ConfigDict):
  """(ours, theirs): environment steps per second of our compiled epoch and
  of PureJaxRL's training of as many steps, called in turn, medians."""
  agent = agent_lib.Agent(config)
  states, _ = agent.place(agent.initial_states([config.seed]))
  rhos = jnp.zeros((1,), jnp.float32)
  epoch = agent.train_epoch.lower(states, rhos).compile()
  train, key = purejaxrl_train(
      make_train, config, config.rl_env_steps_per_epoch
  )

  def ours_epoch():
    nonlocal states  # Donated to each call: carry on from its output.
    states, metrics = epoch(states, rhos)
    jax.block_until_ready(metrics)

  calls = {ours_epoch: [], lambda: jax.block_until_ready(train(key)): []}
  for call in calls:
    call()  # The first call of each warms up.
  end = time.perf_counter() + FLAGS.interleave_seconds
  while time.perf_counter() < end:
    for call, seconds in calls.items():
      start = time.perf_counter()
      call()
      seconds.append(time.perf_counter() - start)
  return tuple(
      config.rl_env_steps_per_epoch / statistics.median(seconds)
      for seconds in calls.values()
  )


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Not each run's config.
  if not FLAGS.purejaxrl_dir:
    raise SystemExit('error: --purejaxrl_dir=<a PureJaxRL checkout> is needed')
  # Before JAX starts: the pool is sized once per process.
  xla_cpu.use_threads(FLAGS.cpu_threads)
  make_train = purejaxrl_make_train(pathlib.Path(FLAGS.purejaxrl_dir))
  rows = []
  for env in FLAGS.envs:
    best = lambda time_it, *args: max(
        time_it(*args) for _ in range(FLAGS.repeats)
    )
    adam = best(ours, config_for(env, 'sgd'))
    sam = best(ours, config_for(env, 'sam'))
    reference = best(theirs, make_train, config_for(env, 'sgd'))
    row = {
        'env': env,
        'cpu_threads': xla_cpu.pool_size(),
        'purejaxrl_adam': reference,
        'ours_adam': adam,
        'ours_sam': sam,
        'ratio_adam': adam / reference,
        'sam_cost': adam / sam,
    }
    if FLAGS.interleave_seconds > 0:
      ours_compiled, theirs_compiled = compiled_in_turn(
          make_train, config_for(env, 'sgd')
      )
      row['compiled_ratio'] = ours_compiled / theirs_compiled
    rows.append(row)
  print(
      f'{"environment":<18} {"threads":>7} {"PureJaxRL":>11} {"ours Adam":>11} '
      f'{"ratio":>6} {"ours SAM":>11} {"SAM cost":>8} {"compiled, in turn":>17}'
  )
  for row in rows:
    print(
        f'{row["env"]:<18} {row["cpu_threads"]:>7} '
        f'{row["purejaxrl_adam"]:>11,.0f} '
        f'{row["ours_adam"]:>11,.0f} {row["ratio_adam"]:>6.2f} '
        f'{row["ours_sam"]:>11,.0f} {row["sam_cost"]:>7.2f}x '
        f'{row.get("compiled_ratio", float("nan")):>17.2f}'
    )
  if FLAGS.json:
    pathlib.Path(FLAGS.json).write_text(json.dumps(rows, indent=1))


if __name__ == '__main__':
  app.run(main)
