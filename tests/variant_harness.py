"""What the SAM variants' tests share: a quadratic whose gradients NumPy
computes by hand, the oracle a variant sees on it, and steps of SGD with
a variant's gradient (for the variants that keep state)."""

import jax
import jax.numpy as jnp
import numpy as np

import sam
from tests.conftest import small_config


class Quadratic:
  """L(w) = 1/2 w^T A w - b^T w over the pytree {'a': (3,), 'b': (2, 2)}."""

  def __init__(self, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((7, 7))
    self.a = m @ m.T + np.eye(7)
    self.b = rng.standard_normal(7)
    self.w = rng.standard_normal(7)

  def gradient(self, w):
    """NumPy's grad L(w) = A w - b, on the flat weights."""
    return self.a @ w - self.b

  @staticmethod
  def tree(w):
    w = jnp.asarray(w, jnp.float32)
    return {'a': w[:3], 'b': w[3:].reshape(2, 2)}

  @staticmethod
  def flat(tree):
    return np.concatenate([np.ravel(tree['a']), np.ravel(tree['b'])])

  def grad_fn(self, tree):
    """The oracle's grad_fn: (gradient, aux), aux the point's first weight
    (so that a test can tell which pass an aux came from)."""
    w = jnp.concatenate([tree['a'], tree['b'].ravel()])
    g = jnp.asarray(self.a, jnp.float32) @ w - jnp.asarray(self.b, jnp.float32)
    return self.tree(g), w[0]


def config_for(variant, **overrides):
  return small_config(optimizer='sam', sam_variant=variant, **overrides)


def oracle(problem, config, w, state=None, step=0, rho=None, lr=0.1):
  return sam.Oracle(
      grad_fn=problem.grad_fn,
      params=problem.tree(w),
      rho=config.rho if rho is None else rho,
      config=config,
      step=jnp.int32(step),
      learning_rate=jnp.float32(lr),
      state=state,
  )


def initial_state(problem, config, seed=0):
  variant = sam.get(config.sam_variant)
  if variant.init is None:
    return None
  return variant.init(problem.tree(problem.w), config, jax.random.key(seed))


def sgd_with_variant(problem, config, num_steps, lr=0.1):
  """num_steps of w <- w - lr * g_descent (the variant's state carried);
  the flat weights after each step."""
  variant = sam.get(config.sam_variant)
  w, state, path = problem.w, initial_state(problem, config), []
  for step in range(num_steps):
    result = variant.gradient(oracle(problem, config, w, state, step, lr=lr))
    w = w - lr * problem.flat(result.descent)
    state = result.state
    path.append(w)
  return np.array(path)


class LinearSoftmax:
  """Softmax regression on a random batch, for the variants that look at
  examples or logits: NumPy's per-example losses and gradients, and the
  oracle's functions in JAX."""

  def __init__(self, seed=0, batch=12, features=5, classes=3):
    rng = np.random.default_rng(seed)
    self.x = rng.standard_normal((batch, features)).astype(np.float32)
    self.y = rng.integers(0, classes, batch)
    self.kernel = rng.standard_normal((features, classes)) / 2
    self.bias = rng.standard_normal(classes) / 2

  def params(self, kernel=None, bias=None):
    kernel = self.kernel if kernel is None else kernel
    bias = self.bias if bias is None else bias
    return {
        'Dense_0': {
            'bias': jnp.asarray(bias, jnp.float32),
            'kernel': jnp.asarray(kernel, jnp.float32),
        }
    }

  @staticmethod
  def probabilities(logits):
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)

  def np_losses(self, kernel, bias, rows=slice(None)):
    p = self.probabilities(self.x[rows] @ kernel + bias)
    return -np.log(p[np.arange(len(p)), self.y[rows]])

  def np_gradient(self, kernel, bias, rows=slice(None), extra=None):
    """(d kernel, d bias) of the mean loss over `rows`; `extra` adds a
    gradient with respect to the logits (per example)."""
    x, y = self.x[rows], self.y[rows]
    d_logits = self.probabilities(x @ kernel + bias)
    d_logits[np.arange(len(y)), y] -= 1
    if extra is not None:
      d_logits = d_logits + extra
    d_logits /= len(y)
    return x.T @ d_logits, d_logits.sum(0)

  # The oracle's functions.
  @staticmethod
  def _logits(params, inputs):
    return inputs @ params['Dense_0']['kernel'] + params['Dense_0']['bias']

  def losses_on(self, params, inputs, labels):
    logits = self._logits(params, inputs)
    return -jnp.take_along_axis(
        jax.nn.log_softmax(logits), labels[:, None], axis=1
    )[:, 0]

  def gradient_on(self, params, inputs, labels, penalty=None):
    def objective(params):
      logits = self._logits(params, inputs)
      losses = self.losses_on(params, inputs, labels)
      total = losses.mean()
      if penalty is not None:
        total += penalty(logits).mean()
      return total, (losses, logits, {})

    return jax.grad(objective, has_aux=True)(params)

  def oracle(self, config, params, state=None, step=0, rho=None):
    inputs, labels = jnp.asarray(self.x), jnp.asarray(self.y)
    return sam.Oracle(
        grad_fn=lambda p: self.gradient_on(p, inputs, labels),
        params=params,
        rho=config.rho if rho is None else rho,
        config=config,
        step=jnp.int32(step),
        learning_rate=jnp.float32(0.1),
        state=state,
        inputs=inputs,
        labels=labels,
        gradient_on=self.gradient_on,
        losses_on=self.losses_on,
        predict=self._logits,
        steps_per_epoch=10,
    )
