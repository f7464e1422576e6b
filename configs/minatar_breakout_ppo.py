"""PPO on Breakout-MinAtar (gymnax's MinAtar, Young & Tian, 2019): 10x10
frames of 4 channels, 3 actions.

PureJaxRL's settings for MinAtar with its network (separate 64-64 tanh
towers on the flattened frames): 64 environments x 128 steps per rollout,
4 passes of 8 minibatches, Adam (eps 1e-5) at 5e-4 annealed linearly to 0.
8 epochs of 131,072 environment steps (about 1M steps, 13 s with Adam on a
2-core CPU). For the Nature CNN, `--config.rl_network=nature_cnn` (with
`rl_width` its width; on CPU about 50 times slower than the MLP).
"""

from configs import cartpole_ppo


def get_config():
  config = cartpole_ppo.get_config()
  config.environment = 'Breakout-MinAtar'
  config.rl_num_envs = 64
  config.ppo_minibatches = 8
  config.learning_rate = 5e-4
  config.rl_env_steps_per_epoch = 131_072
  config.num_epochs = 8
  # 64 environments are work enough for every core (CartPole's config
  # trains on one).
  config.cpu_threads = 0
  return config
