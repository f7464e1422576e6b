"""What a dataset asks the network to predict: its loss and its metrics.

* `Classification` (the image and text sets): one integer label per example;
  the loss is softmax cross-entropy, the metric accuracy.
* `MultiLabel` (ogbg-molpcba): T binary tasks per example, any of them
  possibly unlabeled. Labels are int8 [n, T]: 1 positive, 0 negative,
  MISSING unlabeled. An example's loss is the mean sigmoid binary
  cross-entropy over its labeled tasks (0 if it has none). The metric is
  OGB's: mean over tasks of the average precision over the whole evaluation
  set (`mean_average_precision`), which no sum of per-batch terms gives, so
  evaluation hands the predictions to `set_metrics`.

Both report, per example, an 'accuracy' (for MultiLabel: the fraction of
its labeled tasks whose logit has the label's sign), so that training
curves and the analysis's loss landscapes read the same for every task.
"""

from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

# The label of an unlabeled (graph, task) pair in MultiLabel.
MISSING = -1


class Task(Protocol):
  """A loss and its metrics. `primary_metric` ranks epochs ('best_*')."""

  name: str
  primary_metric: str
  # Whether set_metrics needs every evaluation example's logits.
  needs_predictions: bool
  label_dtype: Any

  def losses(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example loss [n]; the training loss is their mean."""

  def correct(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example accuracy in [0, 1] (float32 [n])."""

  def set_metrics(
      self, logits: np.ndarray, labels: np.ndarray
  ) -> dict[str, float]:
    """Metrics of a whole evaluation set that sums cannot give."""


class Classification:
  """One of `num_classes` labels per example."""

  name = 'classification'
  primary_metric = 'accuracy'
  needs_predictions = False
  label_dtype = np.int32

  def losses(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)

  def correct(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)

  def set_metrics(
      self, logits: np.ndarray, labels: np.ndarray
  ) -> dict[str, float]:
    del logits, labels
    return {}


class MultiLabel:
  """Independent binary tasks, some unlabeled (see the module docstring)."""

  name = 'multilabel'
  primary_metric = 'average_precision'
  needs_predictions = True
  label_dtype = np.int8

  def losses(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    labeled = labels != MISSING
    losses = optax.sigmoid_binary_cross_entropy(
        logits, (labels == 1).astype(logits.dtype)
    )
    return jnp.sum(jnp.where(labeled, losses, 0), -1) / jnp.maximum(
        jnp.sum(labeled, -1), 1
    )

  def correct(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    labeled = labels != MISSING
    right = (logits > 0) == (labels == 1)
    return (
        jnp.sum(right & labeled, -1) / jnp.maximum(jnp.sum(labeled, -1), 1)
    ).astype(jnp.float32)

  def set_metrics(
      self, logits: np.ndarray, labels: np.ndarray
  ) -> dict[str, float]:
    return {'average_precision': mean_average_precision(logits, labels)}


TASKS = {'classification': Classification(), 'multilabel': MultiLabel()}


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
  """Sums over the valid examples of a batch: loss, accuracy, count."""
  return {
      'loss': jnp.sum(jnp.where(valid, losses, 0)),
      'correct': jnp.sum(jnp.where(valid, task.correct(logits, labels), 0)),
      'count': jnp.sum(valid.astype(jnp.int32)),
  }
