"""Every sharpness-aware method's strength chosen on validation data, at one
width, on a setting where SAM has a measurable gain: the first stage of the
CPU comparison of the methods (docs/sam_variants.md, "Every method on a
CPU").

The data and schedule of fashion_mnist_mlp_width_tuned.py at 40% label
noise (the first 4,000 Fashion-MNIST training examples, a fixed 20% held
out for validation, 100 epochs), the MLP (150, 50). Each method with a
ball (sam, usam, gsam, esam, looksam, fisher_sam, friendly_sam, vasso)
trains the five rhos of RHOS from seeds 0-2 side by side (replica_seeds: 15
replicas): 8 runs. RWP and MESA have no ball; their strengths
(sam_rwp_sigma, sam_mesa_lambda) are axes of their own, 3 seeds side by
side each (the second and third commands). SAM-ON perturbs normalization
layers, which the MLP has none of: it is refused, and left out.

  python sweep.py --workdir=runs/fashion_mnist_mlp_variants_tuning \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_variants_tuning.py
  python sweep.py --workdir=runs/fashion_mnist_mlp_variants_tuning \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_variants_tuning.py \
      --sweep='sam_variant=[rwp]' \
      --sweep='sam_rwp_sigma=[0.002,0.005,0.01,0.02,0.05,0.1,0.2]' \
      --set=replica_rho='()' --set=replica_seeds=0 --set=num_replicas=3
  python sweep.py --workdir=runs/fashion_mnist_mlp_variants_tuning \
      --sweep_config=configs/sweeps/fashion_mnist_mlp_variants_tuning.py \
      --sweep='sam_variant=[mesa]' \
      --sweep='sam_mesa_lambda=[0.2,0.8,3.2,12.8]' \
      --set=replica_rho='()' --set=replica_seeds=0 --set=num_replicas=3
  python report.py runs/fashion_mnist_mlp_variants_tuning --tune=rho \
      --tune=sam_rwp_sigma --tune=sam_mesa_lambda

report.py's tuned.csv then holds each method's choice (the best mean final
validation accuracy over seeds 0-2), which fashion_mnist_mlp_variants.py
trains at three widths from other seeds.
"""

from configs.sweeps import fashion_mnist_mlp_width_fit
from configs.sweeps import fashion_mnist_mlp_width_tuned

# The methods that perturb the weights within a ball of radius rho.
BALL_VARIANTS = (
    'sam',
    'usam',
    'gsam',
    'esam',
    'looksam',
    'fisher_sam',
    'friendly_sam',
    'vasso',
)
TUNING_WIDTH = (150, 50)
SEEDS = 3


def get_sweep():
  sweep = fashion_mnist_mlp_width_fit.get_sweep()
  rhos = fashion_mnist_mlp_width_tuned.RHOS
  sweep['grid'] = {'sam_variant': list(BALL_VARIANTS)}
  sweep['fixed'] = {
      **{k: v for k, v in sweep['fixed'].items() if k != 'rho'},
      'optimizer': 'sam',
      'label_noise': 0.4,
      'num_neurons': TUNING_WIDTH,
      'replica_rho': rhos,
      'replica_seeds': SEEDS,
      'num_replicas': SEEDS * len(rhos),
  }
  return sweep
