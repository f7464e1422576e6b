"""Shin et al.'s reinforcement-learning claim at CPU scale: does SAM's gain
in return over Adam grow with the agent's width? PPO on Breakout-MinAtar
(configs/minatar_breakout_ppo.py, about 1M environment steps), actor-critic
towers of 16, 32, 64 and 128 units (two layers each).

SAM-Adam trains three rhos from seeds 0-6 side by side (replica_seeds: 21
replicas); Adam trains seeds 0-6. report.py chooses rho per width on seeds
0-1 and reports the gain on seeds 2-6, paired by seed, so that the choice
and the result use different seeds. 8 runs, about 45 minutes on a 2-core
CPU:

  python sweep.py --workdir=runs/minatar_breakout_width \
      --sweep_config=configs/sweeps/minatar_breakout_width.py
  python sweep.py --workdir=runs/minatar_breakout_width \
      --sweep_config=configs/sweeps/minatar_breakout_width.py \
      --sweep='optimizer=[sgd]' --set=num_replicas=7 --set=replica_rho='()' \
      --set=replica_seeds=0
  python report.py runs/minatar_breakout_width --tune=rho \
      --tune_metric=final_test_return --tune_seeds=0,1
"""

RHOS = (0.01, 0.03, 0.1)
SEEDS = 7
WIDTHS = [(16, 16), (32, 32), (64, 64), (128, 128)]


def get_sweep():
  return {
      'config': 'configs/minatar_breakout_ppo.py',
      'grid': {
          'num_neurons': WIDTHS,
          # One value here; the Adam runs replace it (see the docstring).
          'optimizer': ['sam'],
      },
      'fixed': {
          'replica_rho': RHOS,
          'replica_seeds': SEEDS,
          'num_replicas': SEEDS * len(RHOS),
      },
  }
