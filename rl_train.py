"""Trains an agent with PPO, and with a SAM variant on the PPO loss: the
reinforcement-learning counterpart of train.py (main.py runs it for a
config with `environment` set).

An epoch's training runs in one compiled call (rl/agent.py): a number of
times, a rollout of `rl_rollout_steps` steps of `rl_num_envs` gymnax
environments (`lax.scan` over vmapped environments), its advantages, and
`ppo_epochs` passes of `ppo_minibatches` minibatch updates; the evaluation
episodes follow in a second call. Replicas (seeds, rhos) are vmapped side
by side. The whole state (weights, optimizer, the variant's state, the
environments' states and observations, the running returns, the random
key) is checkpointed after every epoch, so that a resumed run continues
exactly.
"""

from collections.abc import Callable
import dataclasses
import time
from typing import Any

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from configuration import config_util
from configuration import validate
from divergence import Diverged
import rl
from rl import agent as agents
from runs import outcomes
from runs import run_log
from runs import run_state
from runs import rundir
from runtime import parallel
import tasks
import training_run

# The metric runs are ranked and reported by: the mean undiscounted return
# of the evaluation episodes ('test', for report.py) or of the training
# episodes that ended in the epoch ('train').
RETURN = tasks.Metric('return', higher_is_better=True)


def _record(
    epoch: int, config: ml_collections.ConfigDict, metrics: dict[str, Any]
) -> dict[str, Any]:
  """A replica's epoch, as its history holds it."""
  episodes = int(metrics['episodes'])
  return {
      'epoch': epoch,
      'step': epoch * config.rl_env_steps_per_epoch,
      # None when no training episode ended in the epoch.
      'train_return': (
          float(metrics['return_sum']) / episodes if episodes else None
      ),
      'train_episodes': episodes,
      'test_return': float(metrics['test_return']),
      **{
          f'train_{name}': float(metrics[name])
          for name in (
              'loss',
              'actor_loss',
              'value_loss',
              'entropy',
              'clipped_fraction',
          )
      },
  }


# TensorBoard tags of a record's entries (the evaluation as eval/).
def _scalars(record: dict[str, Any]) -> dict[str, float]:
  return {
      (
          'eval/return'
          if key == 'test_return'
          else run_log.tensorboard_name(key)
      ): value
      for key, value in record.items()
      if key not in ('epoch', 'step') and value is not None
  }


def _summary(
    config: ml_collections.ConfigDict,
    history: list[dict[str, Any]],
    progress: dict[str, Any],
    num_params: int,
    status: str,
    steps_per_epoch: int,
) -> dict[str, Any]:
  """A replica's summary.json."""
  final = history[-1] if history else {}
  best = max(history, key=lambda r: r['test_return']) if history else {}
  seconds = progress['steady_seconds']
  return {
      'config': config.to_dict(),
      'status': status,
      'num_params': num_params,
      'sparsity': 0.0,  # Agents are not pruned.
      'primary_metric': RETURN.name,
      'metrics': [RETURN.to_json()],
      # The evaluation episodes' mean return: at the last epoch, and the
      # highest of any epoch (also as the test split's, for report.py).
      'final_return': final.get('test_return'),
      'best_return': best.get('test_return'),
      'final_test_return': final.get('test_return'),
      'best_test_return': best.get('test_return'),
      'final_train_return': final.get('train_return'),
      'best_epoch': best.get('epoch'),
      'epochs': final.get('epoch', 0),
      'env_steps': final.get('step', 0),
      # Optimizer updates (what analyze.py's measurements are labelled by).
      'steps': final.get('epoch', 0) * steps_per_epoch,
      'wall_seconds': progress['wall_seconds'],
      # Environment steps per second after compilation, per replica.
      'env_steps_per_sec': (
          progress['steady_env_steps'] / seconds / len(progress['histories'])
          if seconds > 0
          else None
      ),
      'history': history,
  }


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
  """Trains the agent; resumes from `workdir`; returns the summary (with
  replicas, the index of their summaries under workdir/replica_<r>/).

  Raises:
    config_util.ConfigError: the config or workdir cannot be trained;
      nothing was written but the workdir's lock file.
    Diverged: the PPO loss became non-finite (summary.json says so).
    outcomes.Stopped: should_stop() asked to stop (checked after each
      epoch, which is then checkpointed); resuming continues exactly.
  """
  workdir = rundir.require_absolute(workdir, 'workdir')
  validate.check_config(config)
  config_util.require(
      jax.process_count() == 1,
      'an agent trains in one process (its replicas side by side); start '
      'one process per run',
  )
  rundir.check_workdir(workdir, config)
  with rundir.locked(workdir):
    return _train(config, workdir, should_stop)


@dataclasses.dataclass
class _Run:
  """An agent's run being trained: what its epochs share."""

  agent: agents.Agent
  configs: list[ml_collections.ConfigDict]  # One per replica.
  checkpointer: rundir.Checkpointer
  writers: list[run_log.Writer]  # One per replica.
  num_params: int


def _start(
    config: ml_collections.ConfigDict, workdir: epath.Path
) -> tuple[_Run, agents.AgentState, dict[str, Any]]:
  """Restores the newest checkpoint or initializes, checks an extended
  run, writes config.json and the hparams: (run, state, progress)."""
  agent = agents.Agent(config)
  configs = run_state.replica_configs(config)
  # Restored onto the same placement.
  fresh, placement = agent.place(
      agent.initial_states([c.seed for c in configs])
  )
  checkpointer = rundir.Checkpointer(workdir, config.checkpoints_to_keep)
  restored = (
      checkpointer.restore(fresh)
      if checkpointer.latest_step() is not None
      else None
  )
  if restored is not None:
    agent.resume(restored[0])
  state, progress = restored or (
      fresh,
      {
          'epoch': 0,
          'histories': [[] for _ in configs],
          'wall_seconds': 0.0,
          'steady_env_steps': 0,
          'steady_seconds': 0.0,
      },
  )
  if (workdir / 'config.json').exists():
    validate.check_extension(
        rundir.load_config(workdir),
        config,
        int(np.ravel(state.step)[0]),
        agent.steps_per_epoch,
        progress['epoch'],
    )
  run_log.log_start(config)
  rundir.write_json(workdir / 'config.json', config.to_dict())
  num_params = run_state.count_params(parallel.replica(state.params, 0))
  logging.info(
      '%s on %s: %s parameters, %d updates of %d minibatches x %d passes '
      'per epoch, %s.',
      config.rl_network,
      config.environment,
      f'{num_params:,}',
      agent.updates_per_epoch,
      config.ppo_minibatches,
      config.ppo_epochs,
      placement,
  )
  if restored is not None:
    logging.info(
        'Resumed from the checkpoint at the end of epoch %d.',
        progress['epoch'],
    )
  writers = [
      run_log.writer(d) for d in rundir.replica_dirs(workdir, len(configs))
  ]
  if progress['epoch'] == 0:
    read = set(rl.read_keys(config))
    for writer, single in zip(writers, configs):
      writer.write_hparams(
          {k: v for k, v in run_log.hparams(single).items() if k in read}
      )
  return (
      _Run(agent, configs, checkpointer, writers, num_params),
      state,
      progress,
  )


def _train(
    config: ml_collections.ConfigDict,
    workdir: epath.Path,
    should_stop: Callable[[], bool],
) -> dict[str, Any]:
  done = training_run.finished_before(workdir, config)
  if done is not None:
    return done
  start_seconds = time.perf_counter()
  run, state, progress = _start(config, workdir)
  agent, configs, checkpointer, writers = (
      run.agent,
      run.configs,
      run.checkpointer,
      run.writers,
  )
  rhos = jax.device_put(
      jnp.asarray([c.rho for c in configs], jnp.float32),
      state.step.sharding,
  )
  wall_before, first_epoch = progress['wall_seconds'], progress['epoch'] + 1
  statuses = [outcomes.FINISHED] * len(configs)
  diverged = {}  # The epoch and replicas a divergence stopped at.
  try:
    for epoch in range(first_epoch, config.num_epochs + 1):
      began = time.perf_counter()
      state, metrics = agent.train_epoch(state, rhos)
      metrics = jax.device_get(metrics)
      # The training's time alone: the evaluation episodes come after.
      trained = time.perf_counter()
      metrics['test_return'] = jax.device_get(agent.evaluate(state.params))
      if epoch > first_epoch:  # The first epoch of a process compiles.
        progress['steady_seconds'] += trained - began
        progress['steady_env_steps'] += config.rl_env_steps_per_epoch * len(
            configs
        )
      progress['wall_seconds'] = (
          wall_before + time.perf_counter() - start_seconds
      )
      failed = [r for r, ok in enumerate(metrics['finite']) if not ok]
      if failed:
        statuses = [
            outcomes.DIVERGED if r in failed else outcomes.INCOMPLETE
            for r in range(len(configs))
        ]
        diverged = {'diverged_epoch': epoch, 'diverged_replicas': failed}
        error = Diverged(epoch, failed, len(configs))
        checkpointer.wait()
        error.kept_step = checkpointer.latest_step()
        raise error
      for r, (history, writer) in enumerate(
          zip(progress['histories'], writers)
      ):
        record = _record(epoch, config, {k: v[r] for k, v in metrics.items()})
        history.append(record)
        writer.write_scalars(record['step'], _scalars(record))
      progress['epoch'] = epoch
      checkpointer.save(state, progress)
      _log_epoch(progress['histories'], config.num_epochs)
      if should_stop() and epoch < config.num_epochs:
        checkpointer.wait()
        raise outcomes.Stopped(
            f'at the end of epoch {epoch} of {config.num_epochs}; run the '
            'same command to resume'
        )
  finally:
    checkpointer.close()
    for writer in writers:
      writer.close()
    if statuses != [outcomes.FINISHED] * len(configs) or (
        progress['epoch'] == config.num_epochs
    ):
      summaries = [
          {
              **_summary(
                  c, h, progress, run.num_params, s, agent.steps_per_epoch
              ),
              **diverged,
          }
          for c, h, s in zip(configs, progress['histories'], statuses)
      ]
      summary = run_log.write_replica_summaries(
          workdir, config, summaries, statuses, progress, details=diverged
      )
  return summary


def _log_epoch(histories: list[list[dict[str, Any]]], num_epochs: int) -> None:
  """The console line of an epoch: each replica's returns, or their mean."""
  last = [h[-1] for h in histories]
  mean = lambda key: np.mean(
      [r[key] for r in last if r[key] is not None] or [np.nan]
  )
  logging.info(
      'epoch %d/%d: train return %.1f (%d episodes), eval return %.1f, '
      'loss %.4f, entropy %.3f%s',
      last[0]['epoch'],
      num_epochs,
      mean('train_return'),
      sum(r['train_episodes'] for r in last),
      mean('test_return'),
      mean('train_loss'),
      mean('train_entropy'),
      f' (mean of {len(last)} replicas)' if len(last) > 1 else '',
  )
