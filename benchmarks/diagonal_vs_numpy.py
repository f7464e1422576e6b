r"""Long full-batch runs on a diagonal linear network: this framework's GD,
n-SAM and 1-SAM steps per second against NumPy loops of the same updates,
the way Andriushchenko & Flammarion's reference code runs them.

  python -m benchmarks.diagonal_vs_numpy [--steps=20000] [--replicas=16]
      [--json=FILE]

Ours: main.py's training of configs/diagonal_net.py (n = 20, d = 30, full
batch), epochs of --steps_per_epoch steps, each epoch one dispatch; steps
per second in the steady state (summary.json's train_examples_per_sec / n:
compilation, evaluation and checkpoints excluded) and over the whole run
(wall_seconds, which include them). NumPy: float64, one Python iteration
per step, timed over --steps steps; 1-SAM's per-example ascents both as the
reference code computes them (a Python loop over the examples, row
`1_sam_loop`) and vectorized over the examples (row `1_sam`).

Rows `n_sam_grid` and `1_sam_grid`: a sweep of --replicas values of rho
(log-spaced from 0.01 to 1), which A&F's code runs one rho after another
and ours trains side by side as replicas in one program; ours is then the
steps per second of all the replicas together, NumPy's those of its single
run (the grid's time is --replicas times its run's).
"""

import json
import pathlib
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

from configs import diagonal_net
from input_pipeline import synthetic
import train

flags.DEFINE_integer('steps', 20_000, 'Training steps of each run.')
flags.DEFINE_integer('steps_per_epoch', 2000, 'Steps per epoch (dispatch).')
flags.DEFINE_integer('replicas', 16, 'Values of rho in the grid rows.')
flags.DEFINE_string('json', None, 'Also write the table as JSON here.')
FLAGS = flags.FLAGS

# n-SAM's and 1-SAM's rho (ours: 1-SAM's is twice the reference code's).
RHO = 0.1
METHODS = {
    'gd': dict(optimizer='sgd'),
    'n_sam': dict(optimizer='sam', rho=RHO),
    '1_sam': dict(optimizer='sam', rho=RHO, sam_m=1),
    '1_sam_loop': dict(optimizer='sam', rho=RHO, sam_m=1),
    'n_sam_grid': dict(optimizer='sam', rho=RHO),
    '1_sam_grid': dict(optimizer='sam', rho=RHO, sam_m=1),
}


def numpy_steps(config, method: str, steps: int) -> tuple[float, float]:
  """(steps per second, final training loss) of NumPy's loop."""
  data = synthetic.generate(config)
  x, y = data['x'].astype(float), data['y'].astype(float)
  n = len(y)
  u, v = np.full(x.shape[1], config.init_scale), np.zeros(x.shape[1])
  lr, rho = config.learning_rate, config.rho

  def gradient(u, v):
    d_beta = x.T @ (x @ (u * v) - y) / n
    return d_beta * v, d_beta * u

  def one_sam(u, v):
    # Example k ascends along the gradient of its own half squared error,
    # r_k x_k (v, u); then the mean of the examples' gradients there.
    r = x @ (u * v) - y
    u_k = u + rho * r[:, None] * x * v
    v_k = v + rho * r[:, None] * x * u
    r_k = np.sum(x * u_k * v_k, 1) - y
    return (r_k[:, None] * x * v_k).mean(0), (r_k[:, None] * x * u_k).mean(0)

  def one_sam_loop(u, v):
    gu, gv = np.zeros_like(u), np.zeros_like(v)
    for k in range(n):
      r = x[k] @ (u * v) - y[k]
      u_k, v_k = u + rho * r * x[k] * v, v + rho * r * x[k] * u
      r_k = x[k] @ (u_k * v_k) - y[k]
      gu, gv = gu + r_k * x[k] * v_k / n, gv + r_k * x[k] * u_k / n
    return gu, gv

  start = time.perf_counter()
  for _ in range(steps):
    if method == 'gd':
      gu, gv = gradient(u, v)
    elif method in ('n_sam', 'n_sam_grid'):
      eu, ev = gradient(u, v)
      gu, gv = gradient(u + rho * eu, v + rho * ev)
    elif method in ('1_sam', '1_sam_grid'):
      gu, gv = one_sam(u, v)
    else:
      gu, gv = one_sam_loop(u, v)
    u, v = u - lr * gu, v - lr * gv
  seconds = time.perf_counter() - start
  return steps / seconds, float(np.mean((x @ (u * v) - y) ** 2) / 2)


def ours(config) -> dict[str, float]:
  """Steps per second of all the replicas together (the index summary's
  throughput counts them all), steady and over the whole run."""
  with tempfile.TemporaryDirectory() as workdir:
    summary = train.train_and_evaluate(config, workdir)
  steps = config.num_epochs * config.epoch_passes * config.num_replicas
  return {
      'steps_per_sec': summary['train_examples_per_sec'] / config.batch_size,
      'steps_per_sec_whole_run': steps / summary['wall_seconds'],
  }


def table(
    steps: int, steps_per_epoch: int, replicas: int
) -> dict[str, dict[str, float]]:
  rows = {}
  for method, overrides in METHODS.items():
    config = diagonal_net.get_config()
    config.update(overrides)
    config.update(
        num_epochs=max(steps // steps_per_epoch, 1),
        epoch_passes=steps_per_epoch,
        steps_per_dispatch=steps_per_epoch,
        log_spaced_evals=0,
    )
    if method.endswith('_grid'):
      config.update(
          num_replicas=replicas,
          replica_rho=tuple(np.geomspace(0.01, 1, replicas).tolist()),
          # Replicas share their data (A&F's grid is over one draw).
          data_seed=0,
      )
    row = ours(config)
    rate, loss = numpy_steps(config, method, steps)
    row.update(
        numpy_steps_per_sec=rate,
        numpy_final_loss=loss,
        speedup=row['steps_per_sec'] / rate,
        speedup_whole_run=row['steps_per_sec_whole_run'] / rate,
    )
    rows[method] = row
  return rows


def main(argv):
  del argv
  rows = table(FLAGS.steps, FLAGS.steps_per_epoch, FLAGS.replicas)
  print(
      f'{"method":10} {"ours steps/s":>13} {"(whole run)":>12} '
      f'{"NumPy steps/s":>14} {"speedup":>8} {"(whole run)":>12}'
  )
  for method, row in rows.items():
    print(
        f'{method:10} {row["steps_per_sec"]:13,.0f} '
        f'{row["steps_per_sec_whole_run"]:12,.0f} '
        f'{row["numpy_steps_per_sec"]:14,.0f} {row["speedup"]:8.1f} '
        f'{row["speedup_whole_run"]:12.1f}'
    )
  if FLAGS.json:
    pathlib.Path(FLAGS.json).write_text(json.dumps(rows, indent=2) + '\n')


if __name__ == '__main__':
  app.run(main)
