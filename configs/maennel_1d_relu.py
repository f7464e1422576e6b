"""A one-hidden-layer ReLU network fitting Maennel et al.'s 12 points, with
GD or SAM: the 1-D regression of Andriushchenko & Flammarion (ICML 2022)
and Shin et al. (UAI 2025), whose code both fit it so.

100 hidden neurons (their 10-neuron network: --config.num_neurons='(10,)'),
initialized as in their code (mlp_init='maennel'); full-batch GD without
momentum or weight decay. Their loss is half the *sum* of squared errors
with step 5e-5; ours is half the mean, so the same steps take a learning
rate 12 times larger, 6e-4. SAM is the normalized ascent with their
rho = 0.3 (a normalized ascent does not depend on the loss's scale):

  python main.py --workdir=runs/maennel_gd --config=configs/maennel_1d_relu.py
  ... --config.optimizer=sam --config.rho=0.3

100,000 steps (their runs stop at 10^6 steps or a loss of 1e-5; their SAM
runs also decay the step linearly to 0).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'maennel_1d'
  config.model = 'mlp'
  config.num_neurons = (100,)
  config.mlp_init = 'maennel'
  config.base_optimizer = 'sgd'
  config.momentum = 0.0
  config.weight_decay = 0.0
  config.learning_rate = 12 * 5e-5
  config.lr_schedule = 'constant'
  config.batch_size = 12
  config.eval_batch_size = 12
  # 10 epochs of 10,000 steps, each one dispatch; the losses also at 60
  # steps spaced evenly on a log scale.
  config.num_epochs = 10
  config.epoch_passes = 10_000
  config.steps_per_dispatch = 10_000
  config.log_spaced_evals = 60
  config.rho = 0.3
  return config
