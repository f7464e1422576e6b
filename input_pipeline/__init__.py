"""Input pipelines: datasets (`sources`) and the two ways of feeding them
to the training loop, chosen by the dataset: `on_device` for datasets that
fit in memory, `streaming` (tf.data on the host) for ImageNet. Both
implement the interfaces in `feeding`."""

from collections.abc import Sequence

import jax
import ml_collections

from input_pipeline import feeding
from input_pipeline import on_device
from input_pipeline import sources


def create_datasets(
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    replica_keys: Sequence[dict[str, jax.Array]],
) -> tuple[feeding.TrainFeeder, dict[str, feeding.EvalFeeder]]:
  """Returns the training data and the evaluation sets by name for
  `config.dataset`: 'test', and 'validation' if config.validation_fraction
  or the dataset has a validation split of its own.

  `replica_keys` holds the 'data', 'augment' and 'label_noise' keys of each
  replica (run_state.seed_keys).
  """
  spec = sources.dataset_spec(config)
  if not spec.in_memory:
    # Imported here: it imports TensorFlow, which in-memory datasets need
    # only while they are read.
    from input_pipeline import streaming  # pylint: disable=g-import-not-at-top

    return (
        streaming.StreamingTrainData(spec, config, mesh),
        {'test': streaming.StreamingEvalData(config, mesh)},
    )
  train = on_device.OnDeviceTrainData(
      sources.load_split(config, train=True), spec, config, mesh, replica_keys
  )
  evaluation = {
      'test': on_device.OnDeviceEvalData(
          sources.load_split(config, train=False), config, mesh
      )
  }
  if config.validation_fraction or spec.validation_split:
    evaluation['validation'] = on_device.OnDeviceEvalData(
        sources.load_validation_split(config), config, mesh
    )
  return train, evaluation
