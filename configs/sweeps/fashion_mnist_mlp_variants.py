"""Every sharpness-aware method against SGD at three widths, each at the
strength chosen for it on validation data: the second stage of the CPU
comparison of the methods (docs/sam_variants.md, "Every method on a CPU").

The setting of fashion_mnist_mlp_variants_tuning.py (the first 4,000
Fashion-MNIST training examples, 20% held out, 40% label noise, 100
epochs) at the widths (75, 25), (150, 50) and (300, 100), seeds 3-5 side by
side (num_replicas=3): seeds the tuning stage did not use, so that the
choice does not bias the gains. Each method trains at its choice in
CHOSEN (its rho, or RWP's sigma, MESA's lambda), one command per group of
methods that share a rho (report.py keeps the rho of each run):

  W=runs/fashion_mnist_mlp_variants
  S=configs/sweeps/fashion_mnist_mlp_variants.py
  python sweep.py --workdir=$W --sweep_config=$S --sweep='optimizer=[sgd]'
  python sweep.py --workdir=$W --sweep_config=$S \
      --sweep='sam_variant=[sam,usam,gsam,fisher_sam,friendly_sam,vasso]' \
      --set=rho=0.16
  ...   (a line per value of CHOSEN; see commands() below)
  python report.py $W

`python -m configs.sweeps.fashion_mnist_mlp_variants` prints every command.
"""

from configs.sweeps import fashion_mnist_mlp_variants_tuning as tuning
from configs.sweeps import mnist_mlp_width

# Each method's strength, chosen by fashion_mnist_mlp_variants_tuning.py
# (report.py --tune; its tuned.csv): the key and its value.
CHOSEN = {
    'sam': ('rho', 0.16),
    'usam': ('rho', 0.16),
    'gsam': ('rho', 0.16),
    'fisher_sam': ('rho', 0.16),
    'friendly_sam': ('rho', 0.16),
    'vasso': ('rho', 0.16),
    'esam': ('rho', 0.016),
    'looksam': ('rho', 0.005),
    'rwp': ('sam_rwp_sigma', 0.05),
    'mesa': ('sam_mesa_lambda', 3.2),
}
SEED = 3


def get_sweep():
  sweep = tuning.get_sweep()
  sweep['grid'] = {'num_neurons': mnist_mlp_width.WIDTHS[:3]}
  fixed = {
      k: v
      for k, v in sweep['fixed'].items()
      if k not in ('replica_rho', 'replica_seeds', 'num_neurons')
  }
  sweep['fixed'] = {**fixed, 'seed': SEED, 'num_replicas': tuning.SEEDS}
  return sweep


def commands(workdir: str = 'runs/fashion_mnist_mlp_variants') -> list[str]:
  """The sweep.py commands of the comparison: SGD, then each group of
  methods that share a chosen value."""
  base = (
      f'python sweep.py --workdir={workdir} '
      '--sweep_config=configs/sweeps/fashion_mnist_mlp_variants.py'
  )
  groups = {}
  for variant, (key, value) in CHOSEN.items():
    groups.setdefault((key, value), []).append(variant)
  return [f"{base} --sweep='optimizer=[sgd]'"] + [
      f"{base} --sweep='sam_variant=[{','.join(variants)}]' "
      f'--set={key}={value}'
      for (key, value), variants in groups.items()
  ]


if __name__ == '__main__':
  print('\n'.join(commands()))
