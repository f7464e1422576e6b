r"""Analyzes a trained run: python analyze.py --workdir=RUN_DIR.

Loads the run's config (RUN_DIR/config.json) and newest checkpoint, measures
the Hessian spectrum, sharpness and loss landscape of the training loss on a
fixed subset of the training data (see analysis/measure.py), and writes into
RUN_DIR/analysis/:

  analysis.json                  every scalar, with errors, settings, timings
  spectral_density.png, .npz     SLQ density of the Hessian's eigenvalues
  landscape_1d.png, .npz         loss along a filter-normalized direction
  landscape_2d_contour.png,
  landscape_2d_surface.png,
  landscape_2d.npz               loss on the plane of two such directions
  interpolation.png, .npz        with --interpolate_to=OTHER_RUN: loss along
                                 (1 - t) w_run + t w_other
  events.out.tfevents.*          the scalars, at the checkpoint's step: a
                                 TensorBoard run of their own (RUN/analysis),
                                 apart from training's, replaced by the next
                                 analysis

The .npz files hold the raw grids the figures show. analysis.json keeps
each part (analysis.parts) with the step and settings it was measured with
(`parts`): an analysis of fewer parts adds to it instead of erasing the
others. A run of several replicas (config.num_replicas) gets one analysis
per replica, in RUN_DIR/replica_<r>/ (where training logs each replica).

Given a sweep's directory (sweep.py's --workdir) instead of a run's, it
analyzes each finished run in it, in one process, and skips runs whose
parts are already measured with the same settings at their last step;
`report.py` then plots the Hessian's measurements against width (see
docs/analysis.md):

  python analyze.py --workdir=runs/fashion_mnist_mlp_width_fit \
      "--config.analysis.parts=('hessian',)"

An agent's run (a config with `environment`) is measured on its PPO loss
on a rollout collected from its checkpoint (rl/analysis.py): the parts
hessian, sharpness and landscape.

The model, dataset and label noise always come from the run's config.json.
The analysis settings are the run's own `analysis` block (configs/default.py's
for a run from before a key) with the command line's overrides:

  python analyze.py --workdir=runs/sam --interpolate_to=runs/sgd \
      --config.analysis.num_examples=4096 --config.analysis.top_k=10
"""

from collections.abc import Sequence
import json
import logging as python_logging
import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging
from etils import epath
import jax
import ml_collections
from ml_collections import config_flags
import numpy as np

from analysis import measure
from analysis import parts
from analysis import plots
from analysis import results as analysis_results
from analysis import settings
from configs import default
from configuration import cli
from configuration import config_util
from input_pipeline import tfds_data
from rl import analysis as rl_analysis
from runs import run_log
from runs import run_state
from runs import rundir
from runtime import compilation_cache
from runtime import distributed
from runtime import parallel

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags (defined when run as a script, so that tests
  can import this module beside others that define --workdir)."""
  flags.DEFINE_string(
      'workdir',
      None,
      'The run to analyze (a workdir of '
      'main.py; results go to WORKDIR/analysis), or a '
      "sweep's directory: each finished run in it.",
  )
  flags.DEFINE_string(
      'interpolate_to',
      None,
      'Another run of the same model '
      'and dataset: also plot the loss along the straight line '
      "between the two runs' weights.",
  )
  config_flags.DEFINE_config_dict(
      'config',
      default.get_config(),
      'Analysis settings: override '
      '--config.analysis.KEY=VALUE (keys in configs/default.py). Other keys '
      'come from the run.',
      lock_config=True,
  )
  flags.mark_flags_as_required(['workdir'])
  distributed.define_flags()


def analysis_config(
    workdir: str,
    flag_config: ml_collections.ConfigDict,
    overrides: dict[str, Any],
) -> ml_collections.ConfigDict:
  """The run's config with the command line's analysis settings.

  Args:
    workdir: the run.
    flag_config: the --config flag's value (defaults plus overrides).
    overrides: the keys set on the command line ('analysis.top_k', ...).

  Raises:
    config_util.ConfigError: `workdir` is not a run, or an override names a key
      outside `analysis` (those come from the run).
  """
  config = rundir.load_config(epath.Path(workdir))
  outside = sorted(k for k in overrides if not k.startswith('analysis.'))
  if outside:
    raise config_util.ConfigError(
        f'--config.{outside[0]} cannot be set: analyze.py takes only '
        f'--config.analysis.* settings; the rest comes from {workdir}/'
        'config.json'
    )
  # The run's own analysis block (the defaults, for a run from before a
  # key), then the command line's settings.
  block = default.get_config().analysis.to_dict()
  block.update(
      config.get('analysis', {}).to_dict() if 'analysis' in config else {}
  )
  for key in overrides:
    name = key.split('.', 1)[1]
    block[name] = flag_config.analysis[name]
  config.analysis = ml_collections.ConfigDict(block)
  # Not measured here; a run from before the analysis keys lacks it.
  config.analysis_every_epochs = 0
  return config


def replicas(
    config: ml_collections.ConfigDict, state: run_state.TrainState
) -> list[run_state.TrainState]:
  """The run's models: one, or each of its stacked replicas."""
  if config.num_replicas == 1:
    return [state]
  return [parallel.replica(state, r) for r in range(config.num_replicas)]


def check_interpolable(
    workdir: str,
    config: ml_collections.ConfigDict,
    states: list[run_state.TrainState],
    other_dir: str,
    other_config: ml_collections.ConfigDict,
    others: list[run_state.TrainState],
) -> None:
  """Raises config_util.ConfigError unless the runs share parameter shapes and
  dataset (the path is evaluated on the first run's data), and the other
  run has one replica or as many as this one (paired in order)."""
  shapes = lambda s: jax.tree.map(np.shape, s.params)
  if (
      config.dataset != other_config.dataset
      or jax.tree.structure(states[0].params)
      != jax.tree.structure(others[0].params)
      or shapes(states[0]) != shapes(others[0])
  ):
    raise config_util.ConfigError(
        f'cannot interpolate between {workdir} and {other_dir}: they differ '
        'in model or dataset'
    )
  if len(others) not in (1, len(states)):
    raise config_util.ConfigError(
        f'cannot interpolate between {workdir} and {other_dir}: '
        f'{len(others)} replicas cannot be paired with {len(states)}'
    )


def write_outputs(
    outdir: epath.Path,
    results: dict[str, Any],
    arrays: dict[str, Any],
    run_name: str,
    other_name: str | None,
) -> None:
  """analysis.json, the raw grids (.npz) and the figures."""
  outdir.mkdir(parents=True, exist_ok=True)
  for name, grids in arrays.items():
    with (outdir / f'{name}.npz').open('wb') as f:
      np.savez(f, **grids)
  for part in parts.PARTS.values():  # Each draws what it measured.
    part.plot(outdir, arrays, run_name)
  if 'interpolation' in arrays:
    path = arrays['interpolation']
    plots.lines(
        outdir / 'interpolation.png',
        path['ts'],
        {'loss': path['loss']},
        f't (0 = {run_name}, 1 = {other_name})',
        'training loss',
        f'Linear interpolation, {run_name} to {other_name}',
    )
  (outdir / 'analysis.json').write_text(json.dumps(results, indent=2) + '\n')


def run(
    workdir: str,
    config: ml_collections.ConfigDict,
    interpolate_to: str | None = None,
) -> list[dict[str, Any]]:
  """Analyzes `workdir`'s newest checkpoint; returns analysis.json's content
  for each replica (one for most runs).

  `config` is `analysis_config`'s. A run of several replicas gets one
  analysis per replica, written (with its TensorBoard scalars) into
  WORKDIR/replica_<r>/ as train.py does. Raises config_util.ConfigError for a
  directory that is not a run, has no checkpoint, or cannot be interpolated
  with `interpolate_to`.
  """
  settings.check(config)  # Before minutes of loading.
  if config.get('environment'):
    rl_analysis.check(config, interpolate_to)
    states, analyzers, progress = rl_analysis.replica_analyzers(
        config, epath.Path(workdir)
    )
    return _write_analyses(
        workdir, config, states, analyzers, [None] * len(states), progress
    )
  _, state, progress = run_state.load_checkpoint(workdir, config)
  states = replicas(config, state)
  others = [None] * len(states)
  if interpolate_to:
    other_config, other, _ = run_state.load_checkpoint(interpolate_to)
    others = replicas(other_config, other)
    check_interpolable(
        workdir, config, states, interpolate_to, other_config, others
    )
    others = others * (len(states) // len(others))
  analyzers = measure.replica_analyzers(
      run_state.replica_configs(config), parallel.create_mesh()
  )
  return _write_analyses(
      workdir, config, states, analyzers, others, progress, interpolate_to
  )


def _write_analyses(
    workdir: str,
    config: ml_collections.ConfigDict,
    states: list[Any],
    analyzers: list[measure.Analyzer],
    others: list[Any],
    progress: dict[str, Any],
    interpolate_to: str | None = None,
) -> list[dict[str, Any]]:
  """Each replica's analysis, written into its log directory."""
  all_results = []
  for replica, (analyzer, single, other) in enumerate(
      zip(analyzers, states, others)
  ):
    results, arrays = analysis_results.full_analysis(analyzer, single, other)
    logdir = rundir.replica_dirs(epath.Path(workdir), len(states))[replica]
    results = {
        'workdir': str(workdir),
        'replica': replica,
        'epoch': progress['epoch'],
        'interpolate_to': interpolate_to,
        **results,
    }
    outdir = logdir / 'analysis'
    results = merged(
        rundir.read_json(outdir / 'analysis.json'),
        results,
        config.analysis.parts,
    )
    if jax.process_index() == 0:
      name = epath.Path(workdir).name
      write_outputs(
          outdir,
          results,
          arrays,
          f'{name}, replica {replica}' if len(states) > 1 else name,
          interpolate_to and epath.Path(interpolate_to).name,
      )
      write_scalars(outdir, results)
    all_results.append(results)
  return all_results


def merged(
    previous: Any, results: dict[str, Any], parts: Sequence[str]
) -> dict[str, Any]:
  """`results` (of analysis.parts `parts`) with the parts an earlier
  analysis measured and this one did not: a narrower re-analysis adds to
  analysis.json instead of erasing it. results['parts'] says, for each part,
  the step and settings it was measured with."""
  results = dict(
      results,
      parts={
          part: {'step': results['step'], 'settings': results['settings']}
          for part in parts
      },
  )
  if not isinstance(previous, dict):
    return results
  for part, measured in previous.get('parts', {}).items():
    if part not in results['parts']:
      results['parts'][part] = measured
      if part in previous:
        results[part] = previous[part]
  return results


def write_scalars(outdir: epath.Path, results: dict[str, Any]) -> None:
  """The results' TensorBoard scalars, at the run's step, as a TensorBoard
  run of its own (RUN/analysis), so that they neither mix with the
  measurements taken during training nor repeat when analyzed again: the
  previous analysis's events there are replaced."""
  for events in outdir.glob('events.out.tfevents.*'):
    events.unlink()
  writer = run_log.TensorBoardWriter(outdir)
  writer.write_scalars(results['step'], analysis_results.scalars(results))
  writer.close()


def sweep_runs(directory: str) -> list[str] | None:
  """The runs of a sweep's directory (those directly below it), or None if
  `directory` is a run itself or holds no runs."""
  path = epath.Path(directory)
  if (path / 'config.json').exists():
    return None
  runs = sorted(str(p.parent) for p in path.glob('*/config.json'))
  return runs or None


def status(workdir: str, config: ml_collections.ConfigDict) -> str:
  """'finished', 'analyzed' (finished and analyzed with these settings at its
  last step), or the summary's status ('missing' without one)."""
  summary = rundir.read_json(epath.Path(workdir) / 'summary.json')
  if not isinstance(summary, dict):
    return 'missing'
  if summary.get('status', 'finished') != 'finished':
    return summary['status']
  # Which parts an analysis measures does not change how it measures each.
  settings = json.loads(json.dumps(config.analysis.to_dict()))
  settings.pop('parts')
  for logdir in rundir.replica_dirs(epath.Path(workdir), config.num_replicas):
    done = rundir.read_json(logdir / 'analysis' / 'analysis.json')
    steps = (rundir.read_json(logdir / 'summary.json') or {}).get('steps')
    if not isinstance(done, dict):
      return 'finished'
    # Analyses from before per-part records measured every part at once.
    measured = done.get('parts') or {
        part: {'step': done.get('step'), 'settings': done.get('settings')}
        for part in (done.get('settings') or {}).get('parts', ())
    }
    for part in config.analysis.parts:
      record = measured.get(part) or {}
      if (
          record.get('step') != steps
          or {
              k: v
              for k, v in (record.get('settings') or {}).items()
              if k != 'parts'
          }
          != settings
      ):
        return 'finished'
  return 'analyzed'


def analyze_sweep(
    runs: list[str], overrides: dict[str, Any]
) -> list[dict[str, Any]]:
  """Analyzes each finished run of a sweep not yet analyzed with these
  settings; prints what it skips."""
  all_results = []
  for workdir in runs:
    config = analysis_config(workdir, FLAGS.config, overrides)
    run_status = status(workdir, config)
    if run_status != 'finished':
      print(f'skipped ({run_status}): {workdir}', flush=True)
      continue
    all_results += run(workdir, config)
  return all_results


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  # Orbax logs every checkpoint read at INFO.
  logging.get_absl_handler().addFilter(
      lambda record: record.levelno >= python_logging.WARNING
      or '/orbax/' not in record.pathname
  )
  try:
    distributed.initialize()
    workdir = cli.absolute_path(FLAGS.workdir, '--workdir')
    interpolate_to = (
        cli.absolute_path(FLAGS.interpolate_to, '--interpolate_to')
        if FLAGS.interpolate_to is not None
        else None
    )
    overrides = config_flags.get_override_values(FLAGS['config'])
    runs = sweep_runs(workdir)
    if runs and interpolate_to:
      raise config_util.ConfigError('--interpolate_to needs a run, not a sweep')
    config = analysis_config(
        runs[0] if runs else workdir, FLAGS.config, overrides
    )
    compilation_cache.enable(config.get('compilation_cache_dir'))
    all_results = (
        analyze_sweep(runs, overrides)
        if runs
        else run(workdir, config, interpolate_to)
    )
  except (config_util.ConfigError, tfds_data.DatasetUnavailableError) as e:
    cli.fail(str(e))
  for results in all_results:
    logging.info(
        '%s, replica %d, step %d: loss %.4f; %s; seconds: %s',
        results['workdir'],
        results['replica'],
        results['step'],
        results['loss'],
        ', '.join(
            f'{name} {value:.4g}'
            for name, value in analysis_results.scalars(results).items()
        ),
        json.dumps({k: round(v, 2) for k, v in results['seconds'].items()}),
    )


if __name__ == '__main__':
  cli.refuse_unknown_overrides(sys.argv, default.get_config())
  define_flags()
  jax.config.config_with_absl()
  app.run(
      main, flags_parser=cli.flags_parser(lambda argv: default.get_config())
  )
