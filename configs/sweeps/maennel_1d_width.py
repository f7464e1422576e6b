"""Shin et al.'s explanation of the width effect, on the 1-D regression:
a one-hidden-layer ReLU network fitting Maennel et al.'s 12 points with GD
and SAM (configs/maennel_1d_relu.py: their initialization, full batch,
100,000 steps) at 10, 30, 100 and 300 neurons, 3 initializations each.
24 runs, about 2 minutes on a 2-core CPU; then the stability measures
(exact per-example Hessians: these networks have 30 to 900 parameters):

  python sweep.py --workdir=runs/maennel_1d_width \
      --sweep_config=configs/sweeps/maennel_1d_width.py
  python report.py runs/maennel_1d_width
  python analyze.py --workdir=runs/maennel_1d_width \
      "--config.analysis.parts=('stability',)" \
      --config.analysis.num_examples=12 --config.analysis.batch_size=12 \
      --config.analysis.m=0
"""


def get_sweep():
  return {
      'config': 'configs/maennel_1d_relu.py',
      'grid': {
          'optimizer': ['sgd', 'sam'],
          'num_neurons': ['(10,)', '(30,)', '(100,)', '(300,)'],
          'seed': [0, 1, 2],
      },
  }
