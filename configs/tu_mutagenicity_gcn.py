"""TUDataset's Mutagenicity (4,337 molecules, mutagen or not), a GCN
(Kipf & Welling) trained with Adam: the graph model of the EPFL report
(Fainello et al.), whose optimal SAM rho was 0.05.

Read from the TU text files as released, in data_dir/Mutagenicity
(docs/datasets.md; any TU set works as tu/NAME). Nodes are the atoms'
labels (14, one-hot), 3 graph convolutions of hidden_size 128, mean
pooling, a linear head (models/gcn.py): about 52k parameters. A fixed 10%
of the molecules is the test set (test_fraction; TU sets have no split),
10% of the rest validates. Adam lr 1e-3, cosine decay over 100 epochs,
batch 64; SAM rho 0.05. Sweep the width with --config.hidden_size
(configs/sweeps/tu_mutagenicity_gcn_width.py).

  python main.py --workdir=runs/mutagenicity \
      --config=configs/tu_mutagenicity_gcn.py --config.data_dir=DIR
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'tu/Mutagenicity'
  config.test_fraction = 0.1
  config.validation_fraction = 0.1
  config.model = 'gcn'
  config.hidden_size = 128
  config.depth = 3
  config.optimizer = 'sam'
  config.rho = 0.05
  config.base_optimizer = 'adam'
  config.learning_rate = 1e-3
  config.weight_decay = 0.0
  config.batch_size = 64
  config.num_epochs = 100
  config.lr_schedule = 'cosine'
  return config
