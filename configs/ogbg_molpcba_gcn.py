"""ogbg-molpcba molecular property prediction with a GCN (Kipf & Welling).

128 bioassays per molecule (multi-label, most labels missing), scored by
mean average precision over the test set as OGB does. hidden_size 300 and 5
graph convolutions as in OGB's GCN baseline, without its batch norm and
dropout: about 0.5M parameters. 5% of the training molecules held out for
validation. Adam lr 1e-3, cosine decay over 100 epochs, batch 256; SAM rho
0.05. Every molecule is padded to max_nodes atoms and max_edges directed
edges; the loader refuses a larger one and names the sizes that fit.
Sweep the width with --config.hidden_size
(configs/sweeps/ogbg_molpcba_gcn_width.py).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'ogbg_molpcba'
  config.validation_fraction = 0.05
  config.max_nodes = 332
  config.max_edges = 768
  config.model = 'gcn'
  config.hidden_size = 300
  config.depth = 5
  config.optimizer = 'sam'
  config.rho = 0.05
  config.base_optimizer = 'adam'
  config.learning_rate = 1e-3
  config.weight_decay = 0.0
  config.batch_size = 256
  config.eval_batch_size = 1024
  config.num_epochs = 100
  config.lr_schedule = 'cosine'
  return config
