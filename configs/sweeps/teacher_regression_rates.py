"""Linear convergence across widths (Shin et al., UAI 2025: SAM on an
overparameterized network converges linearly, faster the wider it is):
full-batch GD and SAM on 100 examples of the teacher-student regression
without noise (configs/teacher_regression_mlp.py), students of 30 to 1,000
hidden units (about 1e3 to 3e4 parameters, all above the 100 examples), 3
initializations each, 50,000 steps evaluated at 60 log-spaced steps.

One learning rate, 0.005, for every width (GD's stable step shrinks as the
width grows in Flax's standard parameterization: 0.05 diverges at 1,000
units), no momentum, constant. SAM is the unnormalized ascent e = rho g
(usam) of the convergence analyses, rho = 0.01 (0.05 diverges at 1,000
units). 24 runs, about 5 minutes on a 2-core CPU:

  python sweep.py --workdir=runs/teacher_regression_rates \
      --sweep_config=configs/sweeps/teacher_regression_rates.py
  python report.py runs/teacher_regression_rates --rate_window=100:50000 \
      --rate_floor=1e-8
"""


def get_sweep():
  return {
      'config': 'configs/teacher_regression_mlp.py',
      'grid': {
          'optimizer': ['sgd', 'sam'],
          'num_neurons': ['(30,)', '(100,)', '(300,)', '(1000,)'],
          'seed': [0, 1, 2],
      },
      'fixed': {
          'num_train_examples': 100,
          'batch_size': 100,
          'target_noise': 0.0,
          'momentum': 0.0,
          'lr_schedule': 'constant',
          'learning_rate': 0.005,
          'num_epochs': 10,
          'epoch_passes': 5000,
          'steps_per_dispatch': 5000,
          'log_spaced_evals': 60,
          'sam_variant': 'usam',
          'rho': 0.01,
      },
  }
