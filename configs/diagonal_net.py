"""GD, n-SAM and 1-SAM on a diagonal linear network: the sparse regression
of Andriushchenko & Flammarion (ICML 2022, Section 4; their code's
diagonal-network notebook).

n = 20 examples in d = 30 dimensions, a 3-sparse unit-norm theta*, no
noise, 1,000 test examples; beta = u * v with u = 0.1, v = 0 at the start;
full-batch GD with step 5/d and no momentum or weight decay, 10,000 steps,
evaluated every 1,000 and at 50 log-spaced steps. The loss is half the
squared error, as in their code.

  python main.py --workdir=runs/diag_gd --config=configs/diagonal_net.py
  # n-SAM: one unnormalized ascent on the whole batch (their n_SAM_GD).
  ... --config.optimizer=sam --config.rho=0.1
  # 1-SAM: each example its own ascent (their one_SAM_GD with rho/2, whose
  # per-example ascent uses the gradient of r_k^2, twice ours).
  ... --config.optimizer=sam --config.sam_m=1 --config.rho=0.2

Their 1-SAM panel starts closer to zero (--config.init_scale=0.02).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'sparse_regression'
  config.input_dim = 30
  config.num_nonzero = 3
  config.target_noise = 0.0
  config.num_test_examples = 1000
  # A new draw of the data for each seed: GD from u = alpha, v = 0 is
  # deterministic given the data, which is what A&F's repetitions vary.
  config.data_seed = -1
  config.model = 'diagonal_linear'
  config.init_scale = 0.1
  config.base_optimizer = 'sgd'
  config.momentum = 0.0
  config.weight_decay = 0.0
  config.learning_rate = 5 / 30
  config.lr_schedule = 'constant'
  # Full batch: every step sees the 20 examples.
  config.batch_size = 20
  config.eval_batch_size = 1000
  # 10 epochs of 1,000 steps: evaluated, logged and checkpointed every
  # 1,000 steps, each epoch one dispatch; the losses also at 50 steps
  # spaced evenly on a log scale (0, 1, 2, ..., 9,999), inside the
  # dispatches.
  config.num_epochs = 10
  config.epoch_passes = 1000
  config.steps_per_dispatch = 1000
  config.log_spaced_evals = 50
  # A&F's n-SAM and 1-SAM ascend without normalizing the gradient: USAM.
  config.sam_variant = 'usam'
  config.rho = 0.1
  return config
