"""Shin et al.'s Atari panel: SAM-Adam against Adam with PPO on Breakout
(configs/atari_breakout_ppo.py: 10M frames, CleanRL's hyperparameters) for
the Nature CNN at x0.5, x1, x1.5 and x2 width (0.43M, 1.69M, 3.79M and
6.73M parameters; the paper's 0.4, 1.7, 3.8 and 6.7M). For an accelerator.

SAM-Adam trains three rhos from seeds 0-4 side by side (replica_seeds: 15
replicas, 120 games stepped on the host); Adam trains seeds 0-4. report.py
chooses rho per width on seeds 0-1 and reports the gain on seeds 2-4,
paired by seed. 8 runs; on a cluster, one job each:

  python sweep.py --launcher=slurm --slurm_gpus_per_node=1 \
      --slurm_cpus_per_task=16 --workdir=runs/atari_breakout_width \
      --sweep_config=configs/sweeps/atari_breakout_width.py
  python sweep.py --launcher=slurm --slurm_gpus_per_node=1 \
      --slurm_cpus_per_task=16 --workdir=runs/atari_breakout_width \
      --sweep_config=configs/sweeps/atari_breakout_width.py \
      --sweep='optimizer=[sgd]' --set=num_replicas=5 --set=replica_rho='()' \
      --set=replica_seeds=0
  python report.py runs/atari_breakout_width --tune=rho \
      --tune_metric=final_test_return --tune_seeds=0,1
"""

RHOS = (0.01, 0.03, 0.1)
SEEDS = 5
WIDTHS = [0.5, 1.0, 1.5, 2.0]


def get_sweep():
  return {
      'config': 'configs/atari_breakout_ppo.py',
      'grid': {
          'rl_width': WIDTHS,
          # One value here; the Adam runs replace it (see the docstring).
          'optimizer': ['sam'],
      },
      'fixed': {
          'replica_rho': RHOS,
          'replica_seeds': SEEDS,
          'num_replicas': SEEDS * len(RHOS),
      },
  }
