"""The module structure: no import cycles, train.py at the top of the graph,
and the config key groups naming real keys."""

import ast
import graphlib
import pathlib

from configs import default
from tests.conftest import run_python

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Programs: nothing in the library may import them.
ENTRY_POINTS = {'main', 'sweep', 'analyze', 'report', 'train', 'rl_train'}


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _library_modules() -> dict[str, pathlib.Path]:
  """Every module of the project but its tests and benchmarks."""
  paths = [
      p
      for p in ROOT.rglob('*.py')
      if not {'tests', 'benchmarks', '.venv'} & set(p.relative_to(ROOT).parts)
  ]
  return {_module_name(p): p for p in paths}


def _imports(path: pathlib.Path, modules: set[str]) -> set[str]:
  """The project modules that `path` imports, at any depth of its code."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      found.update(
          f'{node.module}.{alias.name}'
          if f'{node.module}.{alias.name}' in modules
          else node.module
          for alias in node.names
      )
  return found & modules


def _graph() -> dict[str, set[str]]:
  modules = _library_modules()
  return {
      name: _imports(path, set(modules)) - {name}
      for name, path in modules.items()
  }


def test_the_import_graph_has_no_cycle():
  # Lazy imports inside functions count: ast.walk sees them.
  order = list(graphlib.TopologicalSorter(_graph()).static_order())
  assert len(order) == len(_graph())


def test_only_entry_points_import_train_and_other_programs():
  importers = {
      name: sorted(imported & ENTRY_POINTS)
      for name, imported in _graph().items()
      if name not in ENTRY_POINTS and imported & ENTRY_POINTS
  }
  assert not importers
  # The training loop reaches the analysis only through the evaluators it
  # is given.
  assert not {m for m in _graph()['train'] if m.startswith('analysis')}


def test_every_module_imports_in_dependency_order():
  """In a fresh interpreter, each module imports after its dependencies
  (what the static graph above claims, checked by Python itself)."""
  order = graphlib.TopologicalSorter(_graph()).static_order()
  code = '\n'.join(f'import {module}' for module in order)
  run_python(['-c', code], check=True)


def test_key_groups_name_keys_of_the_default_config():
  keys = set(default.get_config().keys())
  for group in (
      default.TRAJECTORY_NEUTRAL_KEYS,
      default.SEED_KEYS,
      default.WIDTH_KEYS,
  ):
    assert set(group) <= keys, set(group) - keys


def test_every_config_key_has_exactly_one_owner():
  # The owners: the loop, the data, the optimizer, pruning, the analysis,
  # SAM (the keys every variant shares, and each variant's) and the model
  # families (which may share theirs among themselves).
  from analysis import settings  # pylint: disable=g-import-not-at-top
  from input_pipeline import sources  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  import optimizers  # pylint: disable=g-import-not-at-top
  import rl  # pylint: disable=g-import-not-at-top
  import sam  # pylint: disable=g-import-not-at-top
  import sparsity  # pylint: disable=g-import-not-at-top
  import train  # pylint: disable=g-import-not-at-top
  import train_step  # pylint: disable=g-import-not-at-top

  owners = {
      'loop': set(train.CONFIG_KEYS),
      'data': (
          set(sources.CONFIG_KEYS)
          .union(*sources.INPUT_KEYS.values())
          .union(sources.dataset_keys())
      ),
      'optimizer': set(optimizers.CONFIG_KEYS),
      'sparsity': set(sparsity.CONFIG_KEYS),
      'analysis': set(settings.CONFIG_KEYS),
      'sam': (
          set(train_step.SAM_KEYS).union(
              *(v.keys for v in sam.VARIANTS.values())
          )
      ),
      'models': (
          set(models.CONFIG_KEYS).union(
              *(f.keys for f in models.MODELS.values())
          )
      ),
      'reinforcement learning': set(rl.CONFIG_KEYS),
  }
  keys = set(default.get_config().keys())
  owned = [key for group in owners.values() for key in group]
  assert sorted(set(owned)) == sorted(keys), set(owned) ^ keys
  assert len(owned) == len(set(owned)), [
      k for k in set(owned) if owned.count(k) > 1
  ]
  # The derived groups: SGD ignores exactly SAM's keys (and the epoch SAM
  # starts from, which the loop reads), and the width keys are the model
  # families' and the agents'.
  assert {k for k in keys if default.is_sam_only(k)} == owners['sam'] | {
      'sam_start_epoch'
  }
  assert set(default.WIDTH_KEYS) == set(rl.WIDTH_KEYS).union(
      *(f.width_keys for f in models.MODELS.values())
  )
  # What an agent reads besides its own keys is owned elsewhere.
  assert set(rl.OTHER_KEYS) <= set(owned) - set(rl.CONFIG_KEYS)
