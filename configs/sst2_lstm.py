"""SST-2 sentiment (GLUE, through TFDS), an LSTM text classifier: the
language model of Shin et al.'s (2025) Figure 1, trained with SGD and
momentum.

Word-level tokens (a 20,000-word vocabulary from the training sentences,
64 tokens per sentence, longer ones truncated), one LSTM layer of
hidden_size 256 whose embeddings are 256 wide too (models/lstm.py): about
5.6M parameters, 5.1M of them word embeddings. 5% of the training
sentences held out for validation; GLUE's test labels are hidden, so the
validation split of GLUE is the test set (as in Flax's sst2 example). SGD
lr 0.1, momentum 0.9, weight decay 5e-4, cosine decay over 20 epochs,
batch 64; SAM rho 0.05. Sweep the width with --config.hidden_size
(configs/sweeps/sst2_lstm_width.py).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'glue/sst2'
  config.validation_fraction = 0.05
  config.vocab_size = 20_000
  config.max_length = 64
  config.model = 'lstm'
  config.hidden_size = 256
  config.optimizer = 'sam'
  config.rho = 0.05
  config.base_optimizer = 'sgd'
  config.momentum = 0.9
  config.learning_rate = 0.1
  config.weight_decay = 5e-4
  config.batch_size = 64
  config.num_epochs = 20
  config.lr_schedule = 'cosine'
  return config
