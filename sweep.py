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
from their checkpoints. A failed or diverged run does not stop the others;
the table printed at the end gives each run's status and error, and the exit
code is 1 when any run failed or diverged. SIGTERM, SIGINT (Ctrl-C) or
SIGUSR1 stops the running runs, each with a checkpoint, and exits with 75;
the same command resumes.
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
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from absl import app
from absl import flags
import ml_collections

import cli
import config_util
import outcomes

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


# How a run ended: its main.py exit code, or that it did not run.
OK, FAILED, DIVERGED, STOPPED = 'ok', 'failed', 'diverged', 'stopped'
SKIPPED, NOT_STARTED = 'skipped', 'not started'
STATUSES = (OK, FAILED, DIVERGED, STOPPED, SKIPPED, NOT_STARTED)
_STATUS_OF_EXIT_CODE = {0: OK, outcomes.EXIT_DIVERGED: DIVERGED,
                        outcomes.EXIT_STOPPED: STOPPED}


@dataclasses.dataclass(frozen=True)
class Outcome:
  """How a run ended: one of STATUSES."""

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


def plan_runs(sweep: Sweep, workdir: pathlib.Path) -> list[Run]:
  """One Run per grid point, each config resolved (and so checked) now."""
  base = cli.load_config_file(sweep.config, {})
  for key in (*sweep.grid, *sweep.fixed):
    error = config_util.unknown_key_error(key, base)
    if error:
      raise SweepError(f'{error} (in {sweep.config})')
  runs, names = [], collections.Counter()
  for point in grid_points(sweep.grid):
    name = run_name(point)
    names[name] += 1
    if len(name.encode()) > MAX_NAME_LENGTH:
      raise SweepError(f'run name {name!r} is longer than {MAX_NAME_LENGTH} '
                       'bytes; sweep fewer keys')
    overrides = {**sweep.fixed, **point}
    try:
      config = cli.load_config_file(sweep.config, overrides)
    except config_util.ConfigError as e:
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
  """Whether run.workdir holds the summary of a finished run of exactly
  this run's config."""
  summary = run.workdir / 'summary.json'
  if not summary.is_file():
    return False
  # JSON turns tuples into lists; compare in that form.
  expected = json.loads(json.dumps(run.config.to_dict()))
  try:
    content = json.loads(summary.read_text())
  except ValueError:
    return False
  return (isinstance(content, dict) and content.get('config') == expected and
          content.get('status', outcomes.FINISHED) == outcomes.FINISHED)


def _now() -> str:
  return datetime.datetime.now().isoformat(timespec='milliseconds')


def _error_line(output: str, returncode: int) -> str:
  """main.py's one-line `error: ...` or `stopped: ...`, else the last line
  it printed."""
  lines = [line.strip() for line in output.splitlines()
           if line.strip() and not line.startswith('=== sweep.py')]
  errors = [line for line in lines
            if line.startswith(('error: ', 'stopped: '))]
  if errors:
    return errors[-1]
  if returncode < 0:
    return f'killed by signal {-returncode}'
  return lines[-1] if lines else f'exit code {returncode}'


class Children:
  """The main.py processes a sweep is running, so that a stop reaches them.

  On SIGTERM, SIGINT or SIGUSR1 the sweep starts no new run and sends
  SIGTERM to each running one, which checkpoints and exits (main.py's exit
  code 75); the sweep then reports them as stopped. (On Ctrl-C, the
  terminal has also sent SIGINT to them; main.py treats the two as one
  request.)
  """

  def __init__(self):
    self._lock = threading.Lock()
    self._running: set[subprocess.Popen] = set()
    self.stopping = False

  def start(self, command: list[str], **kwargs) -> subprocess.Popen | None:
    """Popen(command), unless the sweep is stopping (then None)."""
    with self._lock:
      if self.stopping:
        return None
      process = subprocess.Popen(command, **kwargs)
      self._running.add(process)
      return process

  def finished(self, process: subprocess.Popen) -> None:
    with self._lock:
      self._running.discard(process)

  def stop(self, signum: int, frame) -> None:
    """Signal handler: stop every run, start none."""
    del frame
    with self._lock:
      if not self.stopping:
        print(f'{signal.Signals(signum).name}: stopping the running runs '
              '(each saves a checkpoint)...', flush=True)
      self.stopping = True
      for process in self._running:
        process.send_signal(signal.SIGTERM)


def execute(run: Run, env: Mapping[str, str], children: Children) -> Outcome:
  """Trains one run in a main.py process, appending its output to train.log."""
  run.workdir.mkdir(parents=True, exist_ok=True)
  log_path = run.workdir / LOG_NAME
  start = time.perf_counter()
  with log_path.open('a') as log:
    log.write(f'=== sweep.py started at {_now()}: {shlex.join(run.command)}\n')
    log.flush()
    output_start = log.tell()
    process = children.start(run.command, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env)
    if process is None:
      log.write('=== sweep.py did not start it: the sweep was stopped\n')
      return Outcome(run, NOT_STARTED)
    returncode = process.wait()
    children.finished(process)
    log.write(f'=== sweep.py finished at {_now()}: exit code {returncode}\n')
  seconds = time.perf_counter() - start
  status = _STATUS_OF_EXIT_CODE.get(returncode, FAILED)
  if status == OK:
    return Outcome(run, OK, seconds)
  with log_path.open() as log:
    log.seek(output_start)
    output = log.read()
  return Outcome(run, status, seconds, _error_line(output, returncode))


def run_all(runs: Sequence[Run], parallel: int) -> list[Outcome]:
  """Skips finished runs and executes the others, `parallel` at a time.

  SIGTERM, SIGINT and SIGUSR1 stop the running runs (with checkpoints) and
  start no more; the same command resumes.
  """
  results = {run.name: Outcome(run, SKIPPED)
              for run in runs if is_finished(run)}
  todo = [run for run in runs if run.name not in results]
  print(f'{len(runs)} runs: {len(results)} finished already, {len(todo)} to '
        f'run, {parallel} at a time.', flush=True)
  env = dict(os.environ)
  if parallel > 1:
    # By default each JAX process claims 75% of an accelerator's memory up
    # front, so a second run on the same GPU would fail to start.
    env.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')
  children = Children()
  previous = {sig: signal.signal(sig, children.stop)
              for sig in cli.STOP_SIGNALS}
  with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
    futures = [pool.submit(execute, run, env, children) for run in todo]
    for done, future in enumerate(
        concurrent.futures.as_completed(futures), start=1):
      outcome = future.result()
      results[outcome.run.name] = outcome
      print(f'[{done}/{len(todo)}] {outcome.status:8} '
            f'{outcome.seconds:7.1f}s  {outcome.run.name}', flush=True)
  for sig, handler in previous.items():
    signal.signal(sig, handler)
  return [results[run.name] for run in runs]


def format_table(results: Sequence[Outcome]) -> str:
  """One line per run: status, seconds, name and, if it did not end ok, its
  error; then the count of each status."""
  width = max(len(o.run.name) for o in results)
  lines = [f'{"status":11} {"seconds":>8}  {"run":{width}}  error']
  for o in results:
    seconds = (f'{o.seconds:8.1f}' if o.status not in (SKIPPED, NOT_STARTED)
               else f'{"":8}')
    lines.append(f'{o.status:11} {seconds}  {o.run.name:{width}}  {o.error}'
                 .rstrip())
  counts = collections.Counter(o.status for o in results)
  lines.append(', '.join(f'{counts[s]} {s}' for s in STATUSES
                         if counts[s] or s in (OK, FAILED, SKIPPED)))
  return '\n'.join(lines)


def exit_code(results: Sequence[Outcome]) -> int:
  """1 if a run failed or diverged, else 75 (main.py's) if the sweep was
  stopped before every run ended, else 0."""
  statuses = {o.status for o in results}
  if statuses & {FAILED, DIVERGED}:
    return 1
  if statuses & {STOPPED, NOT_STARTED}:
    return outcomes.EXIT_STOPPED
  return 0


def main(argv: Sequence[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if FLAGS.parallel < 1:
    raise app.UsageError(f'--parallel must be >= 1, got {FLAGS.parallel}')
  try:
    workdir = pathlib.Path(cli.absolute_path(FLAGS.workdir, '--workdir'))
    sweep = build_sweep(FLAGS.config, FLAGS.sweep, FLAGS.set,
                        FLAGS.sweep_config)
    runs = plan_runs(sweep, workdir)
  except (SweepError, config_util.ConfigError) as e:
    cli.fail(str(e))
  if FLAGS.dry_run:
    for run in runs:
      status = 'finished' if is_finished(run) else 'to run'
      print(f'{run.name} ({status}): {shlex.join(run.command)}')
    return 0
  results = run_all(runs, FLAGS.parallel)
  print(format_table(results))
  code = exit_code(results)
  if code == outcomes.EXIT_STOPPED:
    print('stopped; run the same command again to resume', flush=True)
  return code


if __name__ == '__main__':
  define_flags()
  app.run(main)
