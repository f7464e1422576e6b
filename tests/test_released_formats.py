"""The datasets read from the user's files as released: CoNLL-U treebanks,
MIT-BIH's CSV and TUDataset directories parsed against what the tests wrote
(data_files.py), their splits, and a missing or malformed file refused in
one line naming the file and the line, before anything is written."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configuration import config_util
from configuration import validate
from input_pipeline import conllu
from input_pipeline import graphs
from input_pipeline import mitbih
from input_pipeline import sources
from input_pipeline import spec
from input_pipeline import text
from input_pipeline import tudataset
import models
from tests import data_files
from tests.conftest import run_python
from tests.conftest import small_config


def _config(dataset, data_dir, **overrides):
  return small_config(dataset=dataset, data_dir=str(data_dir), **overrides)


def test_conllu_gives_each_word_its_upos_and_skips_multiword_tokens(tmp_path):
  written = data_files.write_conllu(tmp_path / 'a.conllu', 5, seed=3)
  sentences, tags = conllu.parse(tmp_path / 'a.conllu')
  # The first sentence's multiword token and empty node are not words.
  assert sentences == [tuple(words) for words in written]
  for words, sentence_tags in zip(written, tags):
    assert [conllu.UPOS_TAGS[t] for t in sentence_tags] == [
        data_files.LEXICON[w] for w in words
    ]


def test_treebank_splits_are_token_ids_and_padded_tags(tmp_path):
  data_files.write_treebank(tmp_path)
  config = _config(
      'ud_en_ewt',
      tmp_path,
      model='transformer_tagger',
      max_length=6,
      vocab_size=8,
  )
  train = sources.load_split(config, train=True)
  test = sources.load_split(config, train=False)
  validation = sources.load_validation_split(config)
  assert (len(train), len(validation), len(test)) == (60, 20, 24)
  words = data_files.sentences(60, seed=0)
  # The vocabulary: the 6 most frequent training words, case kept.
  vocabulary = text.build_vocabulary(map(tuple, words), 8)
  np.testing.assert_array_equal(
      train.images, text.encode(map(tuple, words), vocabulary, 6)
  )
  # Tags: truncated at 6 words, PAD_TAG after a sentence's end.
  for row, sentence in zip(train.labels, words):
    expected = [
        conllu.UPOS_TAGS.index(data_files.LEXICON[w]) for w in sentence[:6]
    ]
    assert list(row[: len(expected)]) == expected
    assert np.all(row[len(expected) :] == text.PAD_TAG)
  assert train.labels.shape == (60, 6) and train.labels.dtype == np.int32


def test_mitbih_beats_read_back_as_written(tmp_path):
  data_files.write_mitbih(tmp_path)
  config = _config('mitbih', tmp_path, validation_fraction=0.25)
  x, y = data_files.beats(200, seed=0)
  train = sources.load_split(config, train=True)
  validation = sources.load_validation_split(config)
  kept = ~sources._held_out(200, 0.25)  # pylint: disable=protected-access
  np.testing.assert_array_equal(train.images, x[kept])
  np.testing.assert_array_equal(train.labels, y[kept])
  assert len(validation) == 50 and train.images.dtype == np.float32
  assert sources.example_shape(config) == (mitbih.LENGTH,)
  test = sources.load_split(config, train=False)
  np.testing.assert_array_equal(test.images, data_files.beats(60, seed=1)[0])


def test_tu_graphs_read_back_with_classes_and_labels_renumbered(tmp_path):
  made = data_files.write_tu(tmp_path, 'Toy')
  config = _config('tu/Toy', tmp_path, model='gcn', test_fraction=0.25)
  data = tudataset.read_graphs(config)
  assert data.num_classes == 2 and data.num_node_labels == 4
  for g, (labels, edges, cls) in enumerate(made):
    # Node labels 10..13 become 0..3, graph labels -1 and 1 become 0 and 1.
    np.testing.assert_array_equal(data.node_labels[g], labels)
    both = sorted(edges + [(j, i) for i, j in edges])
    assert sorted(map(tuple, data.edges[g].tolist())) == both
    assert data.classes[g] == cls
  spec_ = sources.dataset_spec(config)
  largest = max(len(labels) for labels, _, _ in made)
  assert spec_.graph_layout == graphs.Layout(
      (4,), largest, 2 * max(len(e) for _, e, _ in made)
  )
  assert spec_.num_classes == 2 and spec_.task.name == 'classification'
  # The test split: a fixed quarter of the graphs, apart from training.
  train, test = (sources.load_split(config, train=t) for t in (True, False))
  assert (len(train), len(test)) == (60, 20)
  in_test = tudataset.in_test_split(80, 0.25)
  np.testing.assert_array_equal(test.labels, data.classes[in_test])
  np.testing.assert_array_equal(train.labels, data.classes[~in_test])
  features, senders, _ = graphs.unpack(test.images, spec_.graph_layout)
  first = np.flatnonzero(in_test)[0]
  np.testing.assert_array_equal(
      features[0, : len(made[first][0]), 0], made[first][0]
  )
  assert np.sum(np.asarray(senders[0]) != graphs.PADDING) == 2 * len(
      made[first][1]
  )


def test_a_tu_set_without_node_labels_gives_every_node_one(tmp_path):
  data_files.write_tu(tmp_path, 'Plain', node_labels=False)
  data = tudataset.read_graphs(_config('tu/Plain', tmp_path))
  assert data.num_node_labels == 1
  assert all(np.all(labels == 0) for labels in data.node_labels)


def _corrupt(path, line, replacement):
  lines = path.read_text().splitlines()
  lines[line - 1] = replacement
  path.write_text('\n'.join(lines) + '\n')


@pytest.mark.parametrize(
    'dataset, file, line, replacement, message',
    [
        (
            'ud_en_ewt',
            'en_ewt-ud-dev.conllu',
            4,
            '2\tcat\tcat\tNOUN',
            'en_ewt-ud-dev.conllu, line 4: expected 10 tab-separated fields',
        ),
        (
            'ud_en_ewt',
            'en_ewt-ud-test.conllu',
            3,
            '1\tcat\tcat\tNOUNISH\t_\t_\t0\tdep\t_\t_',
            'en_ewt-ud-test.conllu, line 3: expected a UPOS tag',
        ),
        (
            'mitbih',
            'mitbih_train.csv',
            7,
            '0.5,0.25',
            'mitbih_train.csv, line 7: expected 187 numbers then a class',
        ),
        (
            'mitbih',
            'mitbih_test.csv',
            2,
            ','.join(['0.5'] * 187 + ['7.0']),
            'mitbih_test.csv, line 2: expected 187 numbers then a class in 0..',
        ),
        (
            'tu/Toy',
            'Toy/Toy_A.txt',
            3,
            '1; 2',
            'Toy_A.txt, line 3: expected 2 comma-separated integers',
        ),
        (
            'tu/Toy',
            'Toy/Toy_A.txt',
            1,
            '1, 9',
            'Toy_A.txt, line 1: expected an edge between nodes of one graph',
        ),
    ],
)
def test_a_malformed_file_is_refused_with_its_line(
    tmp_path, dataset, file, line, replacement, message
):
  data_files.write_treebank(tmp_path)
  data_files.write_mitbih(tmp_path)
  data_files.write_tu(tmp_path, 'Toy')
  _corrupt(tmp_path / file, line, replacement)
  model = {'ud_en_ewt': 'transformer_tagger', 'tu/Toy': 'gcn'}.get(
      dataset, 'mlp'
  )
  workdir = tmp_path / 'run'
  result = run_python(
      [
          'main.py',
          f'--workdir={workdir}',
          '--config=configs/quickstart.py',
          f'--config.dataset={dataset}',
          f'--config.data_dir={tmp_path}',
          f'--config.model={model}',
      ]
  )
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error: ') and message in last, last
  assert not workdir.exists()  # Refused before anything is written.


def test_a_missing_file_says_where_to_get_it(tmp_path):
  with pytest.raises(spec.DataFileError, match='mitbih_train.csv.*kaggle'):
    sources.load_split(_config('mitbih', tmp_path), train=True)
  config = _config('tu/Mutagenicity', tmp_path)
  with pytest.raises(
      spec.DataFileError, match='Mutagenicity_A.txt.*Mutagenicity.zip'
  ):
    sources.dataset_spec(config)
  config.data_dir = None
  with pytest.raises(spec.DataFileError, match='set --config.data_dir=DIR'):
    sources.dataset_spec(config)


def test_the_tu_gcn_embeds_each_node_label(tmp_path):
  data_files.write_tu(tmp_path, 'Toy')
  config = _config('tu/Toy', tmp_path, model='gcn', hidden_size=6, depth=2)
  model = models.create_model(config, num_classes=2)
  layout = sources.dataset_spec(config).graph_layout
  params = model.init(jax.random.key(0), jnp.zeros((1, layout.record_size)))
  # 4 node labels embedded (the one-hot label times a matrix), 2 layers.
  h = 6
  assert sum(x.size for x in jax.tree.leaves(params)) == (
      4 * h + 2 * (h * h + h) + h * 2 + 2
  )


@pytest.mark.parametrize(
    'dataset, overrides, message',
    [
        (
            'ud_en_ewt',
            dict(model='text_transformer'),
            'ud_en_ewt asks for a tag per word, which '
            'model=transformer_tagger gives',
        ),
        (
            'imdb_reviews',
            dict(model='transformer_tagger'),
            'transformer_tagger tags every word; imdb_reviews is '
            'classification',
        ),
        (
            'ud_en_ewt',
            dict(model='transformer_tagger', validation_fraction=0.1),
            'ud_en_ewt has a validation split of its own',
        ),
        (
            'ud_en_ewt',
            dict(model='transformer_tagger', label_noise=0.2),
            'label_noise flips class labels; ud_en_ewt is tagging',
        ),
        (
            'ud_en_ewt',
            dict(
                model='transformer_tagger', optimizer='sam', sam_variant='mesa'
            ),
            'sam_variant=mesa needs a classification task; ud_en_ewt is '
            'tagging',
        ),
        (
            'tu/Toy',
            dict(model='gcn', test_fraction=0.0),
            'test_fraction must be in (0, 1), got 0.0',
        ),
    ],
)
def test_what_these_datasets_cannot_train_is_refused(
    tmp_path, dataset, overrides, message
):
  data_files.write_treebank(tmp_path)
  data_files.write_tu(tmp_path, 'Toy')
  with pytest.raises(config_util.ConfigError, match=re.escape(message)):
    validate.check_config(_config(dataset, tmp_path, **overrides))
