"""PPO on CartPole-v1 (gymnax): the reinforcement-learning quickstart.

The hyperparameters of PureJaxRL's CartPole PPO: 4 environments x 128
steps per rollout, 4 passes of 4 minibatches, Adam (eps 1e-5) at 2.5e-4
annealed linearly to 0, gradients clipped to norm 0.5, separate 64-64 tanh
towers for the policy and the value. 30 epochs of 16,384 environment steps
(491,520 steps, 960 rollouts). `--config.optimizer=sam` puts SAM's ascent
on each minibatch's PPO loss.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.environment = 'CartPole-v1'
  config.rl_network = 'mlp'
  config.num_neurons = (64, 64)
  config.optimizer = 'sgd'  # No SAM: Adam alone (base_optimizer).
  config.base_optimizer = 'adam'
  config.learning_rate = 2.5e-4
  config.adam_eps = 1e-5
  config.lr_schedule = 'linear'
  config.weight_decay = 0.0
  config.rho = 0.05
  config.num_epochs = 30
  # One thread of XLA:CPU: 4 environments' operations are too small to
  # share between cores (runtime/xla_cpu.py); the same results, faster.
  config.cpu_threads = 1
  return config
