"""A sweep's grid and its runs: parsing `--sweep`/`--set` and sweep configs,
naming each grid point, resolving each run's config and its main.py command,
and telling a finished run from one still to train. Shared by the local and
the SLURM launchers (local.py, slurm.py)."""

import collections
from collections.abc import Mapping, Sequence
import dataclasses
import importlib.util
import itertools
import json
import pathlib
import re
import sys
from typing import Any

import ml_collections

from configs import default
from configuration import cli
from configuration import config_util
from runs import outcomes

REPO = pathlib.Path(__file__).resolve().parent.parent
MAIN = REPO / 'main.py'
KEY_PATTERN = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$')
# Longest file name most filesystems accept (bytes).
MAX_NAME_LENGTH = 255


class SweepError(ValueError):
  """A sweep that cannot be run as specified; the message says why."""


@dataclasses.dataclass(frozen=True)
class Sweep:
  """A base config file, the grid's axes and the overrides common to all
  runs, and the SLURM resources of each run (slurm_jobs.SlurmSettings
  fields) where the sweep config gives them.

  Values are strings exactly as main.py receives them after --config.KEY=.
  """

  config: str | None
  grid: dict[str, list[str]]
  fixed: dict[str, str]
  slurm: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Run:
  """One point of the grid."""

  name: str
  workdir: pathlib.Path
  command: list[str]
  config: ml_collections.ConfigDict


@dataclasses.dataclass(frozen=True)
class SharedRun:
  """A grid point that trains exactly what an earlier one trains (their
  configs differ only in keys its optimizer does not read, or in keys that
  do not change training): it is not run again, and the report counts the
  run once."""

  name: str
  same_as: str
  unread: tuple[str, ...]  # The keys in which the two differ.


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
  """Splits '[a,(1,2),b]' at its top-level commas: ['a', '(1,2)', 'b'].

  A value in quotes is taken whole, without its quotes: a path that holds
  commas (as sweep run directories do) is written '"DIR"' or "'DIR'".
  """
  text = text.strip()
  if not (text.startswith('[') and text.endswith(']')):
    raise SweepError(f'{text!r} is not a list [V1,V2,...]')
  closing = {'(': ')', '[': ']', '{': '}'}
  items, current, open_brackets, quote = [], [], [], None
  for char in text[1:-1]:
    if quote:
      if char == quote:
        quote = None
      current.append(char)
      continue
    if char in '"\'':
      quote = char
    elif char in closing:
      open_brackets.append(closing[char])
    elif char in closing.values():
      if not open_brackets or open_brackets.pop() != char:
        raise SweepError(f'{text!r} has an unmatched {char!r}')
    if char == ',' and not open_brackets:
      items.append(_unquoted(''.join(current).strip()))
      current = []
    else:
      current.append(char)
  if quote:
    raise SweepError(f'{text!r} has an unclosed quote')
  if open_brackets:
    raise SweepError(f'{text!r} has an unclosed bracket')
  items.append(_unquoted(''.join(current).strip()))
  if items == ['']:
    raise SweepError(f'{text!r} is an empty list')
  if '' in items:
    raise SweepError(f'{text!r} has an empty value')
  return items


def _unquoted(value: str) -> str:
  """A list item without the quotes around it, if it has them."""
  if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
    return value[1:-1]
  return value


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
  optionally 'fixed': {KEY: VALUE} and 'slurm': {SETTING: VALUE} (the
  resources of each run's SLURM job). Values are Python values (tuples for
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
  if not {'config', 'grid'} <= fields <= {'config', 'grid', 'fixed', 'slurm'}:
    raise SweepError(
        f'get_sweep() of {path} returned the fields '
        f'{sorted(fields)}; expected config, grid and optionally '
        'fixed and slurm'
    )
  return Sweep(
      config=str(REPO / description['config']),
      grid={
          key: [format_value(v) for v in values]
          for key, values in description['grid'].items()
      },
      fixed={
          key: format_value(value)
          for key, value in description.get('fixed', {}).items()
      },
      slurm=dict(description.get('slurm', {})),
  )


def build_sweep(
    config: str | None,
    axes: Sequence[str],
    assignments: Sequence[str],
    sweep_config: str | None,
) -> Sweep:
  """Merges a sweep config with command-line flags, which take precedence.

  A `--sweep` axis replaces the sweep config's axis or fixed value of its
  key; `--set` replaces a fixed value but may not fix a swept key (the run
  names would change; restrict the axis with --sweep instead).
  """
  base = (
      load_sweep_config(sweep_config)
      if sweep_config
      else Sweep(config=None, grid={}, fixed={})
  )
  grid, fixed = dict(base.grid), dict(base.fixed)
  for text in axes:
    key, values = parse_axis(text)
    grid[key] = values
    fixed.pop(key, None)
  for text in assignments:
    key, value = parse_assignment(text)
    if key in grid:
      raise SweepError(
          f'--set={text!r}: {key} is swept; restrict its axis '
          f"with --sweep='{key}=[{value}]' instead"
      )
    fixed[key] = value
  config = config or base.config
  if not config:
    raise SweepError('give --config=FILE or --sweep_config=FILE')
  if not grid:
    raise SweepError(
        "the grid is empty: give --sweep='KEY=[V1,V2,...]' or a "
        '--sweep_config (for a single run use main.py)'
    )
  return Sweep(config=config, grid=grid, fixed=fixed, slurm=base.slurm)


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
  return [
      dict(zip(grid, values)) for values in itertools.product(*grid.values())
  ]


def _ignored_keys(config: ml_collections.ConfigDict) -> set[str]:
  """The keys in which two runs may differ and still train the same: those
  that never change training, and those the optimizer does not read."""
  ignored = set(default.TRAJECTORY_NEUTRAL_KEYS)
  if config.optimizer == 'sgd':
    ignored.update(k for k in config.keys() if default.is_sam_only(k))
  return ignored


def _training(config: ml_collections.ConfigDict) -> str:
  """What a run trains: its config without _ignored_keys."""
  ignored = _ignored_keys(config)
  return json.dumps(
      {k: v for k, v in config.to_dict().items() if k not in ignored},
      sort_keys=True,
      default=str,
  )


def plan_runs(
    sweep: Sweep, workdir: pathlib.Path
) -> tuple[list[Run], list[SharedRun]]:
  """One Run per grid point that trains something no earlier point trains,
  and a SharedRun for each other point. Every config is resolved and
  checked in full (validate.check_config, bar the rules that depend on the
  devices of the machine that will train it) before anything runs."""
  # Imported here: it imports the models and JAX (about 2 s), which
  # building a sweep's command line does not need.
  from configuration import validate  # pylint: disable=g-import-not-at-top
  # Without the grid, whose axes may give the values it requires.
  base = cli.load_config_file(sweep.config, {}, complete=False)
  for key in (*sweep.grid, *sweep.fixed):
    error = config_util.unknown_key_error(key, base)
    if error:
      raise SweepError(f'{error} (in {sweep.config})')
  runs, names = [], collections.Counter()
  for point in grid_points(sweep.grid):
    name = run_name(point)
    names[name] += 1
    if len(name.encode()) > MAX_NAME_LENGTH:
      raise SweepError(
          f'run name {name!r} is longer than {MAX_NAME_LENGTH} '
          'bytes; sweep fewer keys'
      )
    overrides = {**sweep.fixed, **point}
    try:
      config = cli.load_config_file(sweep.config, overrides)
      validate.check_config(config, device_checks=False)
    except config_util.ConfigError as e:
      hint = (
          " (a path that holds commas, as a sweep's run directories "
          'do, is quoted in the list: init_from=["DIR"])'
          if 'init_from' in sweep.grid and 'init_from=' in str(e)
          else ''
      )
      raise SweepError(f'run {name}: {e}{hint}') from e
    run_workdir = workdir / name
    command = [
        sys.executable,
        str(MAIN),
        f'--workdir={run_workdir}',
        f'--config={sweep.config}',
        *(f'--config.{key}={value}' for key, value in overrides.items()),
    ]
    runs.append(Run(name, run_workdir, command, config))
  duplicates = [name for name, count in names.items() if count > 1]
  if duplicates:
    raise SweepError(
        f'several grid points share the run name {duplicates[0]} '
        '(an axis repeats a value?)'
    )
  first, unique, shared = {}, [], []
  for run in runs:
    original = first.setdefault(_training(run.config), run)
    if original is run:
      unique.append(run)
      continue
    differ = sorted(
        k for k in run.config.keys() if run.config[k] != original.config[k]
    )
    shared.append(SharedRun(run.name, original.name, tuple(differ)))
  return unique, shared


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
  return (
      isinstance(content, dict)
      and default.completed(content.get('config', {})) == expected
      and content.get('status', outcomes.FINISHED) == outcomes.FINISHED
  )
