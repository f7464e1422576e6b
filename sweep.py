r"""Trains a grid of main.py runs: python sweep.py --workdir=DIR --config=FILE.

The grid is the cartesian product of `--sweep` axes, e.g.

  python sweep.py --workdir=runs/mnist_width --config=configs/mnist_mlp.py \
      --sweep='num_neurons=[(75,25),(150,50),(300,100)]' \
      --sweep='optimizer=[sgd,sam]' --sweep='seed=[0,1,2]' --set=num_epochs=20

or comes from a sweep config (configs/sweeps/*.py), which command-line
`--sweep`, `--set` and `--config` flags extend or override:

  python sweep.py --workdir=runs/mnist_width \
      --sweep_config=configs/sweeps/mnist_mlp_width.py --parallel=2

Each run is a separate `python main.py` process whose workdir is a
subdirectory named by the run's grid values, e.g.
DIR/num_neurons=75_25,optimizer=sgd,seed=0, and whose output goes to
train.log in that directory. Running the same command again skips finished
runs (those whose summary.json holds the run's config) and resumes the others
from their checkpoints. A failed run does not stop the others; the table
printed at the end gives each run's status and error, and the exit code is
non-zero when any run failed.
"""

import collections
from collections.abc import Mapping, Sequence
import concurrent.futures
import dataclasses
import datetime
import importlib.util
import itertools
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import time
from typing import Any

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags

REPO = pathlib.Path(__file__).resolve().parent
MAIN = REPO / 'main.py'
LOG_NAME = 'train.log'
KEY_PATTERN = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$')
# Longest file name most filesystems accept (bytes).
MAX_NAME_LENGTH = 255

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags (defined when run as a script, so that tests
  can import this module beside others that define --workdir)."""
  flags.DEFINE_string('workdir', None, 'Directory holding one subdirectory per '
                      'run.')
  flags.DEFINE_string('config', None, 'Training config file handed to main.py '
                      '(relative to the current directory); replaces the sweep '
                      "config's.")
  flags.DEFINE_multi_string('sweep', [], "An axis of the grid, KEY=[V1,V2,...], "
                            "e.g. 'num_neurons=[(75,25),(150,50)]'; values are "
                            'passed to main.py as --config.KEY=V. Repeat for '
                            'more axes; the first axis varies slowest.')
  flags.DEFINE_string('sweep_config', None, 'Python file whose get_sweep() '
                      'returns the grid (see configs/sweeps/).')
  flags.DEFINE_multi_string('set', [], 'KEY=VALUE given to every run (not part '
                            'of the run names), e.g. num_epochs=10.')
  flags.DEFINE_integer('parallel', 1, 'Runs trained at the same time, each in '
                       'its own process. Above 1, runs allocate accelerator '
                       'memory as needed (XLA_PYTHON_CLIENT_PREALLOCATE=false) '
                       'so that they can share a GPU.')
  flags.DEFINE_bool('dry_run', False, 'Print the runs and their main.py '
                    'commands without running anything.')
  flags.mark_flag_as_required('workdir')


class SweepError(ValueError):
  """A sweep that cannot be run as specified; the message says why."""


@dataclasses.dataclass(frozen=True)
class Sweep:
  """A base config file, the grid's axes and the overrides common to all runs.

  Values are strings exactly as main.py receives them after --config.KEY=.
  """

  config: str | None
  grid: dict[str, list[str]]
  fixed: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Run:
  """One point of the grid."""

  name: str
  workdir: pathlib.Path
  command: list[str]
  config: ml_collections.ConfigDict


@dataclasses.dataclass(frozen=True)
class Outcome:
  """How a run ended: status is ok, failed or skipped."""

  run: Run
  status: str
  seconds: float = 0.0
  error: str = ''


def format_value(value: Any) -> str:
  """A Python value as a command-line override: (75, 25) -> '(75,25)'."""
  if isinstance(value, (tuple, list)):
    items = ','.join(format_value(v) for v in value)
    # A one-element tuple needs its trailing comma to stay a tuple.
    return f'({items},)' if len(value) == 1 else f'({items})'
  return str(value)


def _check_key(key: str) -> str:
  if not KEY_PATTERN.match(key):
    raise SweepError(f'{key!r} is not a config key')
  return key


def split_list(text: str) -> list[str]:
  """Splits '[a,(1,2),b]' at its top-level commas: ['a', '(1,2)', 'b']."""
  text = text.strip()
  if not (text.startswith('[') and text.endswith(']')):
    raise SweepError(f'{text!r} is not a list [V1,V2,...]')
  closing = {'(': ')', '[': ']', '{': '}'}
  items, current, open_brackets = [], [], []
  for char in text[1:-1]:
    if char in closing:
      open_brackets.append(closing[char])
    elif char in closing.values():
      if not open_brackets or open_brackets.pop() != char:
        raise SweepError(f'{text!r} has an unmatched {char!r}')
    if char == ',' and not open_brackets:
      items.append(''.join(current).strip())
      current = []
    else:
      current.append(char)
  if open_brackets:
    raise SweepError(f'{text!r} has an unclosed bracket')
  items.append(''.join(current).strip())
  if items == ['']:
    raise SweepError(f'{text!r} is an empty list')
  if '' in items:
    raise SweepError(f'{text!r} has an empty value')
  return items


def parse_axis(text: str) -> tuple[str, list[str]]:
  """'optimizer=[sgd,sam]' -> ('optimizer', ['sgd', 'sam'])."""
  key, equals, values = text.partition('=')
  try:
    if not equals:
      raise SweepError("expected KEY=[V1,V2,...], e.g. 'optimizer=[sgd,sam]'")
    return _check_key(key.strip()), split_list(values)
  except SweepError as e:
    raise SweepError(f'--sweep={text!r}: {e}') from None


def parse_assignment(text: str) -> tuple[str, str]:
  """'num_epochs=10' -> ('num_epochs', '10')."""
  key, equals, value = text.partition('=')
  try:
    if not equals or not value.strip():
      raise SweepError('expected KEY=VALUE, e.g. num_epochs=10')
    return _check_key(key.strip()), value.strip()
  except SweepError as e:
    raise SweepError(f'--set={text!r}: {e}') from None


def load_sweep_config(path: str) -> Sweep:
  """The Sweep described by get_sweep() in the Python file `path`.

  get_sweep() returns {'config': FILE, 'grid': {KEY: [VALUE, ...]}} and
  optionally 'fixed': {KEY: VALUE}. Values are Python values (tuples for
  num_neurons); FILE is relative to the repository root.
  """
  file = pathlib.Path(path)
  if not file.is_file():
    raise SweepError(f'sweep config {path} does not exist')
  spec = importlib.util.spec_from_file_location(f'_sweep_{file.stem}', file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'get_sweep'):
    raise SweepError(f'sweep config {path} defines no get_sweep()')
  description = module.get_sweep()
  fields = set(description)
  if not {'config', 'grid'} <= fields <= {'config', 'grid', 'fixed'}:
    raise SweepError(f'get_sweep() of {path} returned the fields '
                     f'{sorted(fields)}; expected config, grid and optionally '
                     'fixed')
  return Sweep(
      config=str(REPO / description['config']),
      grid={key: [format_value(v) for v in values]
            for key, values in description['grid'].items()},
      fixed={key: format_value(value)
             for key, value in description.get('fixed', {}).items()})


def build_sweep(config: str | None, axes: Sequence[str],
                assignments: Sequence[str],
                sweep_config: str | None) -> Sweep:
  """Merges a sweep config with command-line flags, which take precedence.

  A `--sweep` axis replaces the sweep config's axis or fixed value of its
  key; `--set` replaces a fixed value but may not fix a swept key (the run
  names would change; restrict the axis with --sweep instead).
  """
  base = (load_sweep_config(sweep_config) if sweep_config else
          Sweep(config=None, grid={}, fixed={}))
  grid, fixed = dict(base.grid), dict(base.fixed)
  for text in axes:
    key, values = parse_axis(text)
    grid[key] = values
    fixed.pop(key, None)
  for text in assignments:
    key, value = parse_assignment(text)
    if key in grid:
      raise SweepError(f'--set={text!r}: {key} is swept; restrict its axis '
                       f"with --sweep='{key}=[{value}]' instead")
    fixed[key] = value
  config = config or base.config
  if not config:
    raise SweepError('give --config=FILE or --sweep_config=FILE')
  if not grid:
    raise SweepError("the grid is empty: give --sweep='KEY=[V1,V2,...]' or a "
                     '--sweep_config (for a single run use main.py)')
  return Sweep(config=config, grid=grid, fixed=fixed)


def _name_part(value: str) -> str:
  """A value in a directory name: '(75, 25)' -> '75_25', '(16,)' -> '16',
  'a/b' -> 'a_b'."""
  value = re.sub(r'[\s()\[\]{}\'"]', '', value).strip(',')
  return re.sub(r'[^A-Za-z0-9.+-]', '_', value)


def run_name(point: Mapping[str, str]) -> str:
  """The directory of a grid point, its keys sorted so that the axis order
  does not matter: 'num_neurons=75_25,optimizer=sgd,seed=0'."""
  return ','.join(f'{key}={_name_part(point[key])}' for key in sorted(point))


def grid_points(grid: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
  """The cartesian product of the axes; the first axis varies slowest."""
  return [dict(zip(grid, values))
          for values in itertools.product(*grid.values())]


def resolve_config(config_file: str,
                   overrides: Mapping[str, str]) -> ml_collections.ConfigDict:
  """The config main.py builds from `config_file` and `overrides`.

  Uses the same parser as main.py (ml_collections' config_flags), so a value
  main.py could not parse is reported here, before anything runs.
  """
  argv = ['main.py', f'--config={config_file}',
          *(f'--config.{key}={value}' for key, value in overrides.items())]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', config_file,
                                  flag_values=flag_values, sys_argv=argv)
  try:
    flag_values(argv)
  except flags.Error as e:
    raise SweepError(str(e)) from e
  return flag_values.config


def plan_runs(sweep: Sweep, workdir: pathlib.Path) -> list[Run]:
  """One Run per grid point, each config resolved (and so checked) now."""
  if not pathlib.Path(sweep.config).is_file():
    raise SweepError(f'config file {sweep.config} does not exist')
  base = resolve_config(sweep.config, {})
  for key in (*sweep.grid, *sweep.fixed):
    if key.split('.')[0] not in base:
      raise SweepError(f'unknown config key {key!r}: {sweep.config} has no '
                       'such field (see configs/default.py)')
  runs, names = [], collections.Counter()
  for point in grid_points(sweep.grid):
    name = run_name(point)
    names[name] += 1
    if len(name.encode()) > MAX_NAME_LENGTH:
      raise SweepError(f'run name {name!r} is longer than {MAX_NAME_LENGTH} '
                       'bytes; sweep fewer keys')
    overrides = {**sweep.fixed, **point}
    try:
      config = resolve_config(sweep.config, overrides)
    except SweepError as e:
      raise SweepError(f'run {name}: {e}') from e
    run_workdir = workdir / name
    command = [sys.executable, str(MAIN), f'--workdir={run_workdir}',
               f'--config={sweep.config}',
               *(f'--config.{key}={value}' for key, value in overrides.items())]
    runs.append(Run(name, run_workdir, command, config))
  duplicates = [name for name, count in names.items() if count > 1]
  if duplicates:
    raise SweepError(f'several grid points share the run name {duplicates[0]} '
                     '(an axis repeats a value?)')
  return runs


def is_finished(run: Run) -> bool:
  """Whether run.workdir holds a summary of exactly this run's config."""
  summary = run.workdir / 'summary.json'
  if not summary.is_file():
    return False
  # JSON turns tuples into lists; compare in that form.
  expected = json.loads(json.dumps(run.config.to_dict()))
  content = json.loads(summary.read_text())
  return isinstance(content, dict) and content.get('config') == expected


def _now() -> str:
  return datetime.datetime.now().isoformat(timespec='milliseconds')


def _error_line(output: str, returncode: int) -> str:
  """main.py's one-line `error: ...`, else the last line it printed."""
  lines = [line.strip() for line in output.splitlines() if line.strip()]
  errors = [line for line in lines if line.startswith('error: ')]
  if errors:
    return errors[-1]
  if returncode < 0:
    return f'killed by signal {-returncode}'
  return lines[-1] if lines else f'exit code {returncode}'


def execute(run: Run, env: Mapping[str, str]) -> Outcome:
  """Trains one run in a main.py process, appending its output to train.log."""
  run.workdir.mkdir(parents=True, exist_ok=True)
  log_path = run.workdir / LOG_NAME
  start = time.perf_counter()
  with log_path.open('a') as log:
    log.write(f'=== sweep.py started at {_now()}: {shlex.join(run.command)}\n')
    log.flush()
    output_start = log.tell()
    returncode = subprocess.run(run.command, stdout=log,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env).returncode
    log.write(f'=== sweep.py finished at {_now()}: exit code {returncode}\n')
  seconds = time.perf_counter() - start
  if returncode == 0:
    return Outcome(run, 'ok', seconds)
  with log_path.open() as log:
    log.seek(output_start)
    output = log.read()
  return Outcome(run, 'failed', seconds, _error_line(output, returncode))


def run_all(runs: Sequence[Run], parallel: int) -> list[Outcome]:
  """Skips finished runs and executes the others, `parallel` at a time."""
  outcomes = {run.name: Outcome(run, 'skipped')
              for run in runs if is_finished(run)}
  todo = [run for run in runs if run.name not in outcomes]
  print(f'{len(runs)} runs: {len(outcomes)} finished already, {len(todo)} to '
        f'run, {parallel} at a time.', flush=True)
  env = dict(os.environ)
  if parallel > 1:
    # By default each JAX process claims 75% of an accelerator's memory up
    # front, so a second run on the same GPU would fail to start.
    env.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')
  executor = concurrent.futures.ThreadPoolExecutor(max_workers=parallel)
  futures = [executor.submit(execute, run, env) for run in todo]
  try:
    for done, future in enumerate(
        concurrent.futures.as_completed(futures), start=1):
      outcome = future.result()
      outcomes[outcome.run.name] = outcome
      print(f'[{done}/{len(todo)}] {outcome.status:6} {outcome.seconds:7.1f}s  '
            f'{outcome.run.name}', flush=True)
  except KeyboardInterrupt:
    # Launch nothing more; the running main.py processes got the same
    # interrupt from the terminal and stop at once.
    executor.shutdown(wait=True, cancel_futures=True)
    sys.exit('interrupted; run the same command again to resume')
  executor.shutdown()
  return [outcomes[run.name] for run in runs]


def format_table(outcomes: Sequence[Outcome]) -> str:
  """One line per run: status, seconds, name and, if it failed, its error."""
  width = max(len(o.run.name) for o in outcomes)
  lines = [f'{"status":7} {"seconds":>8}  {"run":{width}}  error']
  for o in outcomes:
    seconds = f'{o.seconds:8.1f}' if o.status != 'skipped' else f'{"":8}'
    lines.append(f'{o.status:7} {seconds}  {o.run.name:{width}}  {o.error}'
                 .rstrip())
  counts = collections.Counter(o.status for o in outcomes)
  lines.append(', '.join(f'{counts[s]} {s}' for s in ('ok', 'failed',
                                                       'skipped')))
  return '\n'.join(lines)


def main(argv: Sequence[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if FLAGS.parallel < 1:
    raise app.UsageError(f'--parallel must be >= 1, got {FLAGS.parallel}')
  workdir = pathlib.Path(FLAGS.workdir)
  try:
    sweep = build_sweep(FLAGS.config, FLAGS.sweep, FLAGS.set,
                        FLAGS.sweep_config)
    runs = plan_runs(sweep, workdir)
  except SweepError as e:
    sys.exit(f'error: {e}')
  if FLAGS.dry_run:
    for run in runs:
      status = 'finished' if is_finished(run) else 'to run'
      print(f'{run.name} ({status}): {shlex.join(run.command)}')
    return 0
  outcomes = run_all(runs, FLAGS.parallel)
  print(format_table(outcomes))
  return int(any(o.status == 'failed' for o in outcomes))


if __name__ == '__main__':
  define_flags()
  app.run(main)
