"""What a dataset asks the network to predict: its loss and its metrics.

* `Classification` (the image and text sets): one integer label per example;
  the loss is softmax cross-entropy, the metric accuracy.
* `MultiLabel` (ogbg-molpcba): T binary tasks per example, any of them
  possibly unlabeled. Labels are int8 [n, T]: 1 positive, 0 negative,
  MISSING unlabeled. An example's loss is the mean sigmoid binary
  cross-entropy over its labeled tasks (0 if it has none). The metrics are
  the fraction of an example's labeled tasks whose logit has the label's
  sign ('accuracy') and OGB's: the mean over tasks of the average precision
  over the whole evaluation set (`mean_average_precision`), which no sum of
  per-batch terms gives, so evaluation hands the predictions to
  `set_metrics`.
* `Tagging` (part-of-speech tagging): a label per token, [n, max_length]
  int32, PAD_TAG where a sentence has no more words. An example's loss and
  accuracy are the means over its words; the splits' metrics weigh each
  sentence by its words (`weights`), so they are per word, as taggers are
  scored. Training minimizes the mean over a batch's sentences of their
  mean word loss, which weighs each sentence alike: a batch's gradient is
  then a mean of per-example gradients like every other task's (and the
  same on 1 or 4 devices, and for m-sharpness's and ESAM's subsets).

A task declares its metrics (`Metric`): their names, whether each is a mean
of per-example values (summed on device across batches, devices and
processes, then divided by the count) or a metric of the whole set, which
direction is better, and which one ranks the epochs (`primary_metric`, the
`best_*` entries of summary.json). Evaluation, the training loop's sums,
TensorBoard (`{split}/{metric}`), the console, summary.json and report.py
take them from here, so a new metric or task is edited in this module only.
"""

from collections.abc import Callable
import dataclasses
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

# The label of an unlabeled (graph, task) pair in MultiLabel.
MISSING = -1
# The tag of a position past a sentence's end in Tagging (text.PAD_TAG).
PAD_TAG = -1


@dataclasses.dataclass(frozen=True)
class Metric:
  """A metric a task reports on every evaluated split."""

  name: str
  higher_is_better: bool
  # Shown in percent (the console; report.py's tables and figures).
  percent: bool = False
  # (logits, labels) -> per-example values [n], averaged over a split's
  # examples; None for the loss (the task's `losses`) and for a metric of
  # the whole set (the task's `set_metrics`).
  per_example: Callable[[jax.Array, jax.Array], jax.Array] | None = None

  def to_json(self) -> dict[str, Any]:
    return {
        'name': self.name,
        'higher_is_better': self.higher_is_better,
        'percent': self.percent,
    }


# Every task's first metric: the mean of its per-example `losses`.
LOSS = Metric('loss', higher_is_better=False)


class Task(Protocol):
  """A loss and its metrics (see the module docstring)."""

  name: str
  # LOSS, then the per-example metrics, then the set's.
  metrics: tuple[Metric, ...]
  # The metric that ranks epochs ('best_*' in summary.json).
  primary_metric: str
  label_dtype: Any

  def losses(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example loss [n]; the training loss is their mean."""

  def weights(self, labels: jax.Array) -> jax.Array:
    """int32 [n]: how much each example counts in a split's metrics."""

  def set_metrics(
      self, logits: np.ndarray, labels: np.ndarray
  ) -> dict[str, float]:
    """The metrics of a whole evaluation set (those without per_example)."""


def per_example_metrics(task: Task) -> tuple[Metric, ...]:
  """The task's metrics that are means of per-example values, loss aside."""
  return tuple(m for m in task.metrics if m.per_example is not None)


def needs_predictions(task: Task) -> bool:
  """Whether evaluation must gather every example's logits (set metrics)."""
  return any(m.per_example is None and m is not LOSS for m in task.metrics)


def metric(task: Task, name: str) -> Metric:
  """The task's metric `name`."""
  return next(m for m in task.metrics if m.name == name)


def ranking(task: Task, split: str) -> Callable[[dict[str, Any]], float]:
  """Sort key of an epoch record: larger for a better `split` value of the
  task's primary metric (max() finds the best epoch)."""
  primary = metric(task, task.primary_metric)
  sign = 1.0 if primary.higher_is_better else -1.0
  return lambda record: sign * record[f'{split}_{primary.name}']


def declaration(task: Task) -> dict[str, Any]:
  """What summary.json records of the task's metrics, for report.py."""
  return {
      'primary_metric': task.primary_metric,
      'metrics': [m.to_json() for m in task.metrics],
  }


def _argmax_correct(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)


def _sign_correct(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """The fraction of an example's labeled tasks predicted right."""
  labeled = labels != MISSING
  right = (logits > 0) == (labels == 1)
  return (
      jnp.sum(right & labeled, -1) / jnp.maximum(jnp.sum(labeled, -1), 1)
  ).astype(jnp.float32)


def _each_example_once(labels: jax.Array) -> jax.Array:
  return jnp.ones(labels.shape[:1], jnp.int32)


class Classification:
  """One of `num_classes` labels per example."""

  weights = staticmethod(_each_example_once)

  name = 'classification'
  metrics = (
      LOSS,
      Metric('accuracy', True, percent=True, per_example=_argmax_correct),
  )
  primary_metric = 'accuracy'
  label_dtype = np.int32

  def losses(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)

  def set_metrics(
      self, logits: np.ndarray, labels: np.ndarray
  ) -> dict[str, float]:
    del logits, labels
    return {}


class MultiLabel:
  """Independent binary tasks, some unlabeled (see the module docstring)."""

  weights = staticmethod(_each_example_once)

  name = 'multilabel'
  metrics = (
      LOSS,
      Metric('accuracy', True, percent=True, per_example=_sign_correct),
      Metric('average_precision', True, percent=True),
  )
  primary_metric = 'average_precision'
  label_dtype = np.int8

  def losses(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    labeled = labels != MISSING
    losses = optax.sigmoid_binary_cross_entropy(
        logits, (labels == 1).astype(logits.dtype)
    )
    return jnp.sum(jnp.where(labeled, losses, 0), -1) / jnp.maximum(
        jnp.sum(labeled, -1), 1
    )

  def set_metrics(
      self, logits: np.ndarray, labels: np.ndarray
  ) -> dict[str, float]:
    return {'average_precision': mean_average_precision(logits, labels)}


class Regression:
  """A real target per example (or a vector of them, [n, k]).

  An example's loss is half its squared error, (f(x) - y)^2 / 2, averaged
  over the target's k entries, so the training loss is half the mean
  squared error: the convention of the theory papers and of the reference
  code of Andriushchenko & Flammarion (2022), whose gradient is the
  residual times the Jacobian (the docs map their learning rates and rho
  onto it). The loss is the only metric, and the lower the better
  ('best_*' ranks epochs by it).
  """

  name = 'regression'
  weights = staticmethod(_each_example_once)
  metrics = (LOSS,)
  primary_metric = 'loss'
  label_dtype = np.float32

  def losses(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    labels = labels.reshape(logits.shape)
    return 0.5 * jnp.mean(
        jnp.square(logits - labels).reshape(logits.shape[0], -1), -1
    )

  def set_metrics(
      self, logits: np.ndarray, labels: np.ndarray
  ) -> dict[str, float]:
    del logits, labels
    return {}


def _word_mean(values: jax.Array, labels: jax.Array) -> jax.Array:
  """Each sentence's mean of per-word `values` over its words (0 if none)."""
  words = labels != PAD_TAG
  return jnp.sum(jnp.where(words, values, 0), -1) / jnp.maximum(
      jnp.sum(words, -1), 1
  )


class Tagging:
  """A tag per word (see the module docstring)."""

  name = 'tagging'
  metrics = (
      LOSS,
      Metric(
          'accuracy',
          True,
          percent=True,
          per_example=lambda logits, labels: _word_mean(
              (jnp.argmax(logits, -1) == labels).astype(jnp.float32), labels
          ),
      ),
  )
  primary_metric = 'accuracy'
  label_dtype = np.int32

  def losses(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    return _word_mean(
        optax.softmax_cross_entropy_with_integer_labels(
            logits, jnp.maximum(labels, 0)
        ),
        labels,
    )

  def weights(self, labels: jax.Array) -> jax.Array:
    return jnp.sum(labels != PAD_TAG, -1).astype(jnp.int32)

  def set_metrics(
      self, logits: np.ndarray, labels: np.ndarray
  ) -> dict[str, float]:
    del logits, labels
    return {}


TASKS = {
    'classification': Classification(),
    'multilabel': MultiLabel(),
    'regression': Regression(),
    'tagging': Tagging(),
}


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
  """AP = sum_k (R_k - R_{k-1}) P_k over the distinct score thresholds,
  from the highest down (R, P: recall and precision of "score >= threshold").

  Tied scores form one threshold, as in scikit-learn's
  average_precision_score, which OGB's evaluator calls.
  """
  order = np.argsort(-scores, kind='stable')
  scores, positive = scores[order], positive[order]
  # The last position of each run of equal scores closes a threshold.
  closes = np.r_[scores[1:] != scores[:-1], True]
  true_positives = np.cumsum(positive)[closes]
  predicted = np.arange(1, len(scores) + 1)[closes]
  recall_steps = np.diff(true_positives, prepend=0) / true_positives[-1]
  return float(np.sum(recall_steps * true_positives / predicted))


def mean_average_precision(logits: np.ndarray, labels: np.ndarray) -> float:
  """OGB's molpcba metric: the mean, over the tasks with at least one
  positive and one negative labeled example, of each task's average
  precision over its labeled examples (NaN if no task qualifies)."""
  precisions = []
  for task in range(labels.shape[1]):
    labeled = labels[:, task] != MISSING
    positive = labels[labeled, task] == 1
    if positive.any() and not positive.all():
      precisions.append(average_precision(logits[labeled, task], positive))
  return float(np.mean(precisions)) if precisions else float('nan')


def metric_sums(
    task: Task,
    losses: jax.Array,
    logits: jax.Array,
    labels: jax.Array,
    valid: jax.Array,
) -> dict[str, jax.Array]:
  """Sums over the valid examples of a batch, each weighed by the task's
  `weights`: the loss, each per-example metric, and the count (the sum of
  the weights, which divides the others)."""
  weights = jnp.where(valid, task.weights(labels), 0)
  # where, not a product alone: a padding example's value may be NaN.
  weighted = lambda values: jnp.sum(jnp.where(valid, weights * values, 0))
  sums = {'loss': weighted(losses)}
  for m in per_example_metrics(task):
    sums[m.name] = weighted(m.per_example(logits, labels))
  sums['count'] = jnp.sum(weights)
  return sums


def zero_sums(task: Task) -> dict[str, jax.Array]:
  """Zero sums of what metric_sums adds up."""
  sums = {m.name: jnp.float32(0) for m in (LOSS, *per_example_metrics(task))}
  sums['count'] = jnp.int32(0)
  return sums
