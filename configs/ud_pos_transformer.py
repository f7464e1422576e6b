"""Part-of-speech tagging of Universal Dependencies' English Web Treebank
(UPOS, 17 tags), a Transformer tagger trained with AdamW: the tagger of
Shin et al.'s (2025) Figure 1, whose embedding sizes run from 128 to 640.

Read from the treebank's CoNLL-U files as released, in data_dir
(docs/datasets.md): en_ewt-ud-train.conllu trains, en_ewt-ud-dev.conllu
validates, en_ewt-ud-test.conllu tests. Word-level tokens, case kept (a
20,000-word vocabulary from the training sentences; 128 tokens per
sentence, longer ones truncated), hidden_size 256 (4 heads, MLP 1024), 2
blocks, a tag per word (models/text_transformer.py): about 6.7M
parameters, 5.1M of them word embeddings. Accuracy is per word. AdamW lr
5e-4, weight decay 0.01 (decoupled), one warmup epoch then cosine decay
over 20 epochs, batch 32; SAM rho 0.05. Sweep the width with
--config.hidden_size (configs/sweeps/ud_pos_transformer_width.py).

  python main.py --workdir=runs/ud_pos --config=configs/ud_pos_transformer.py \
      --config.data_dir=UD_English-EWT
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'ud_en_ewt'
  config.vocab_size = 20_000
  config.max_length = 128
  config.model = 'transformer_tagger'
  config.hidden_size = 256
  config.depth = 2
  config.optimizer = 'sam'
  config.rho = 0.05
  config.base_optimizer = 'adamw'
  config.learning_rate = 5e-4
  config.weight_decay = 0.01
  config.batch_size = 32
  config.num_epochs = 20
  config.lr_schedule = 'cosine'
  config.warmup_epochs = 1
  return config
