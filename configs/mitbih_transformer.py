"""MIT-BIH arrhythmia heartbeats (5 classes), a Transformer over time
steps: the attention model of the EPFL report (Fainello et al.).

Read from Kachuee et al.'s CSV files as released, in data_dir
(docs/datasets.md): mitbih_train.csv and mitbih_test.csv. Each 187-step
beat becomes 17 tokens of 11 steps (patch_size 11), hidden_size 128 (2
heads, MLP 512), 2 blocks, mean pooling (models/series_transformer.py):
about 0.4M parameters. All training beats are kept (the report
down-samples the normal class to 19,659 beats in all; keep the first N
with --config.num_train_examples for a smaller set). 10% of the training
beats held out for validation. Adam lr 1e-3, cosine decay over 20 epochs,
batch 128; SAM rho 0.05. The report measured lambda_max / |lambda_min| of
the Hessian (analyze.py, hessian part: `eigenvalue_ratio`). Sweep the width
with --config.hidden_size (configs/sweeps/mitbih_transformer_width.py).

  python main.py --workdir=runs/mitbih --config=configs/mitbih_transformer.py \
      --config.data_dir=DIR_WITH_THE_CSVS
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'mitbih'
  config.validation_fraction = 0.1
  config.model = 'series_transformer'
  config.hidden_size = 128
  config.depth = 2
  config.patch_size = 11
  config.pooling = 'mean'
  config.optimizer = 'sam'
  config.rho = 0.05
  config.base_optimizer = 'adam'
  config.learning_rate = 1e-3
  config.weight_decay = 0.0
  config.batch_size = 128
  config.num_epochs = 20
  config.lr_schedule = 'cosine'
  return config
