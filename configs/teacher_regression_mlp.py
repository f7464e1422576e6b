"""A one-hidden-layer ReLU student learning a random ReLU teacher from noisy
examples: the synthetic regression in which Shin et al. (UAI 2025) measure
SAM's test-loss gain against the number of parameters.

1,000 training examples in 30 dimensions, a 10-unit teacher, target noise
0.1 (test targets noise-free); the student's width is num_neurons (1,000
hidden units: 32,001 parameters; 300 to 3,000 span 1e4 to 1e5).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'teacher_regression'
  config.input_dim = 30
  config.teacher_width = 10
  config.target_noise = 0.1
  config.num_test_examples = 1000
  config.model = 'mlp'
  config.num_neurons = (1000,)
  config.base_optimizer = 'sgd'
  config.momentum = 0.9
  config.weight_decay = 0.0
  # Stable at every width of the docstring's range (0.01 diverges at
  # 3,000 hidden units: the stable step shrinks as the width grows).
  config.learning_rate = 0.003
  config.lr_schedule = 'cosine'
  config.batch_size = 100
  config.eval_batch_size = 1000
  config.num_epochs = 200
  config.rho = 0.05
  return config
