"""IMDB movie reviews, a small Transformer text classifier.

Word-level tokens (a 20,000-word vocabulary from the training reviews, 256
tokens per review), hidden_size 128 (two heads of 64, MLP 512), 2 blocks,
mean pooling over the words: about 2.9M parameters, 2.6M of them in the
word embeddings. 10% of the training reviews held out for validation.
AdamW lr 3e-4, weight decay 0.01 (decoupled), one warmup epoch then cosine
decay over 10 epochs, batch 64; SAM rho 0.05. Sweep the width with
--config.hidden_size (configs/sweeps/imdb_transformer_width.py).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'imdb_reviews'
  config.validation_fraction = 0.1
  config.vocab_size = 20_000
  config.max_length = 256
  config.model = 'text_transformer'
  config.hidden_size = 128
  config.depth = 2
  config.pooling = 'mean'
  config.optimizer = 'sam'
  config.rho = 0.05
  config.base_optimizer = 'adamw'
  config.learning_rate = 3e-4
  config.weight_decay = 0.01
  config.batch_size = 64
  config.num_epochs = 10
  config.lr_schedule = 'cosine'
  config.warmup_epochs = 1
  return config
