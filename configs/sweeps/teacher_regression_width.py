"""Shin et al.'s synthetic-regression panel: SAM's test-loss gain over SGD
against the number of parameters, 1e4 to 1e5. A one-hidden-layer ReLU
student of 300, 1,000 and 3,000 hidden units (9,601 to 96,001 parameters)
learns a 10-unit random ReLU teacher from 1,000 noisy examples
(configs/teacher_regression_mlp.py: SGD with momentum 0.9, batch 100,
cosine learning rate from 0.003, 200 epochs; SAM rho 0.05), 3
initializations each. 18 runs, about 6 minutes on a 2-core CPU:

  python sweep.py --workdir=runs/teacher_regression_width \
      --sweep_config=configs/sweeps/teacher_regression_width.py
  python report.py runs/teacher_regression_width
"""


def get_sweep():
  return {
      'config': 'configs/teacher_regression_mlp.py',
      'grid': {
          'optimizer': ['sgd', 'sam'],
          'num_neurons': ['(300,)', '(1000,)', '(3000,)'],
          'seed': [0, 1, 2],
      },
  }
