"""The runs under a sweep's directory as the report reads them: their
summaries (with the Hessian and the linear stability analyze.py
measured), fine-tunes pooled by their
pretraining setting, and the runs the report cannot use, with why."""

from collections.abc import Mapping
import json
import pathlib
import re
from typing import Any

from configs import default
from reporting import tables
from reporting.stats import finished
from reporting.stats import setting_config
from runs import outcomes

# The analysis settings that decide the Hessian's measurements, written
# beside them in results.csv.
HESSIAN_SETTINGS = (
    'num_examples',
    'seed',
    'lanczos_iterations',
    'lanczos_tolerance',
    'hutchinson_probes',
    'trace_tolerance',
    'slq_probes',
    'slq_iterations',
)


def load_summaries(root: pathlib.Path) -> dict[pathlib.Path, dict[str, Any]]:
  """Every run summary in the summary.json files under `root`, by path.

  A run of several replicas (config.num_replicas) writes one summary per
  replica in its replica_<r>/ directories, found here like any other, and an
  index summary.json (with 'replica_summaries') that is skipped.
  """
  summaries = {}
  for path in sorted(root.rglob('summary.json')):
    content = json.loads(path.read_text())
    if 'replica_summaries' not in content:
      summaries[path] = {
          **content,
          **hessian_fields(path.parent, content),
          **stability_fields(path.parent, content),
          **function_fields(path.parent, content),
          'config': default.completed(content['config']),
      }
      pool_fine_tune(summaries[path]['config'])
  return summaries


def pool_fine_tune(config: dict[str, Any]) -> None:
  """Makes fine-tunes (config.init_from) from pretrained runs of one
  setting seeds of one setting: init_from becomes the pretrained runs'
  setting (its keys that differ from configs/default.py) and the seed
  (pretraining seed, seed), which pairs SAM and SGD fine-tunes of the same
  pretrained run. A pretrained run that cannot be read stays a path."""
  if not config.get('init_from'):
    return
  path = pathlib.Path(config['init_from'])
  replica = re.fullmatch(r'replica_(\d+)', path.name)
  if replica and not (path / 'config.json').exists():
    path = path.parent
  try:
    source = json.loads((path / 'config.json').read_text())
  except (OSError, ValueError):
    return
  seed = (
      default.replica_seeds_and_rhos(default.completed(source))[
          int(replica.group(1))
      ][0]
      if replica
      else source.get('seed', 0)
  )
  defaults = default.get_config().to_dict()
  config['init_from'] = 'pretrained: ' + ', '.join(
      f'{key}={tables.format_value(value)}'
      for key, value in sorted(setting_config(source).items())
      if json.dumps(value) != json.dumps(defaults.get(key))
  )
  config['seed'] = (seed, config.get('seed'))


def hessian_fields(
    run_dir: pathlib.Path, summary: Mapping[str, Any]
) -> dict[str, float]:
  """HESSIAN_METRICS of the run's final weights, if analyze.py measured
  them (at the run's last step)."""
  path = run_dir / 'analysis' / 'analysis.json'
  if not path.exists():
    return {}
  analysis = json.loads(path.read_text())
  # Each part's step and settings (analyses before per-part records: the
  # analysis's own).
  record = analysis.get('parts', {}).get('hessian', analysis)
  if 'hessian' not in analysis or record['step'] != summary.get('steps'):
    return {}
  measured = analysis['hessian']
  fields = {
      'hessian_top_eigenvalue': measured['top_eigenvalues'][0],
      'hessian_trace': measured['trace'],
  }
  if record.get('settings'):
    fields['hessian_settings'] = ', '.join(
        f'{key}={record["settings"].get(key)}' for key in HESSIAN_SETTINGS
    )
  if measured.get('eigenvalue_ratio') is not None:
    fields['hessian_eigenvalue_ratio'] = measured['eigenvalue_ratio']
  moments = measured.get('moments', ())  # Absent if slq_probes=0.
  if len(moments) >= 2:
    fields['hessian_spread'] = moments[1] / moments[0] ** 2
  return fields


def stability_fields(
    run_dir: pathlib.Path, summary: Mapping[str, Any]
) -> dict[str, float]:
  """STABILITY_METRICS of the run's final weights, if analyze.py measured
  them (part 'stability', at the run's last step)."""
  path = run_dir / 'analysis' / 'analysis.json'
  if not path.exists():
    return {}
  analysis = json.loads(path.read_text())
  record = analysis.get('parts', {}).get('stability', {})
  if 'stability' not in analysis or record.get('step') != summary.get('steps'):
    return {}
  return {
      f'stability_{name}': analysis['stability'][name]
      for name in ('sharpness_a', 'non_uniformity_s')
  }


def function_fields(
    run_dir: pathlib.Path, summary: Mapping[str, Any]
) -> dict[str, str]:
  """{'function_1d_file': the arrays of analyze.py's part 'function_1d'}
  if it drew the run's final weights."""
  path = run_dir / 'analysis' / 'analysis.json'
  arrays = run_dir / 'analysis' / 'function_1d.npz'
  if not path.exists() or not arrays.exists():
    return {}
  record = json.loads(path.read_text()).get('parts', {}).get('function_1d', {})
  if record.get('step') != summary.get('steps'):
    return {}
  return {'function_1d_file': str(arrays)}


def unused_runs(
    root: pathlib.Path, summaries: Mapping[pathlib.Path, dict[str, Any]]
) -> dict[pathlib.Path, tuple[str, dict[str, Any] | None]]:
  """Every run under `root` that the report cannot use, by its directory:
  (why, its config, None if it has none). Runs whose summary says they did
  not finish, and run directories without a summary.json: those with a
  config.json, and those where sweep.py ran main.py (its train.log), which
  may have failed before writing its config."""
  unused = {
      path.parent: (summary['status'], summary['config'])
      for path, summary in summaries.items()
      if not finished(summary)
  }
  runs = {
      path.parent
      for name in ('config.json', outcomes.LOG_NAME)
      for path in root.rglob(name)
  }
  for run in sorted(runs):
    if (run / 'summary.json').exists():
      continue
    try:
      config = json.loads((run / 'config.json').read_text())
    except (OSError, ValueError):
      config = None  # Refused before training started.
    if config is None or (isinstance(config, dict) and 'optimizer' in config):
      if config is not None:
        config = default.completed(config)
        pool_fine_tune(config)
      unused[run] = (outcomes.unfinished_reason(run), config)
  return unused
