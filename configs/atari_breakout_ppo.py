"""PPO on Atari Breakout (the Arcade Learning Environment): the setup of
Shin et al.'s Atari panel, for an accelerator.

The hyperparameters of CleanRL's Atari PPO (ppo_atari.py; its games differ,
see docs/rl.md): 8 environments x 128 steps per
rollout, 4 passes of 4 minibatches, Adam (eps 1e-5) at 2.5e-4 annealed
linearly to 0, clip 0.1, entropy 0.01, value 0.5, gradients clipped to
norm 0.5, the Nature CNN on 84x84 greyscale frames stacked by 4 (each
action held for 4 frames), rewards clipped to their sign. 10M frames: 50
epochs of 50,176 environment steps (49 rollouts), each step 4 frames.
`rl_width` scales every layer (configs/sweeps/atari_breakout_width.py).
The games step on the host; needs pip install "ale-py>=0.12.1"
"opencv-python-headless>=4.10".
"""

from configs import cartpole_ppo


def get_config():
  # CartPole's optimizer: Adam (eps 1e-5) at 2.5e-4, annealed linearly.
  config = cartpole_ppo.get_config()
  config.environment = 'ALE/Breakout-v5'
  config.rl_network = 'nature_cnn'
  config.rl_width = 1.0
  config.rl_num_envs = 8
  config.rl_rollout_steps = 128
  config.rl_env_steps_per_epoch = 8 * 128 * 49
  config.rl_eval_episodes = 8
  config.ppo_clip = 0.1
  config.num_epochs = 50
  config.cpu_threads = 0  # The Nature CNN's convolutions use every core.
  return config
