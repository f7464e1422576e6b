"""The persistent compilation cache: a second run compiles nothing, a
damaged cache costs only a recompile, and 'off' writes nothing."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import REPO

RUN = [
    '--config=configs/quickstart.py',
    '--config.num_epochs=1',
    '--config.num_neurons=(32,16)',
]


def main_py(workdir: pathlib.Path, *args: str, env: dict[str, str]) -> str:
  """Runs main.py to the end; returns its output."""
  result = subprocess.run(
      [sys.executable, 'main.py', f'--workdir={workdir}', *RUN, *args],
      cwd=REPO,
      env=env,
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stderr


def history(workdir: pathlib.Path) -> list[dict]:
  summary = json.loads((workdir / 'summary.json').read_text())
  return [
      {k: v for k, v in record.items() if k != 'examples_per_sec'}
      for record in summary['history']
  ]


def entries(directory: pathlib.Path) -> set[str]:
  return set(os.listdir(directory)) if directory.exists() else set()


@pytest.fixture
def env(tmp_path):
  """The environment of a user without a cache setting, whose home cache
  is under tmp_path."""
  env = dict(
      os.environ,
      XDG_CACHE_HOME=str(tmp_path / 'home_cache'),
      JAX_PLATFORMS='cpu',
  )
  env.pop('JAX_COMPILATION_CACHE_DIR', None)
  env.pop('XLA_FLAGS', None)
  return env


def test_a_second_run_compiles_nothing_and_computes_the_same(tmp_path, env):
  cache = tmp_path / 'cache'
  main_py(
      tmp_path / 'first', f'--config.compilation_cache_dir={cache}', env=env
  )
  compiled = entries(cache)
  assert compiled  # Every program of the run, however fast it compiled.
  output = main_py(
      tmp_path / 'second', f'--config.compilation_cache_dir={cache}', env=env
  )
  assert f'Compilation cache: {cache}' in output
  assert entries(cache) == compiled
  assert history(tmp_path / 'second') == history(tmp_path / 'first')
  assert not (tmp_path / 'home_cache' / 'sam-overparam').exists()


@pytest.mark.slow
def test_damaged_entries_cost_a_recompile_and_off_writes_nothing(tmp_path, env):
  # With no setting, the cache lives in the user's cache directory.
  main_py(tmp_path / 'first', env=env)
  cache = tmp_path / 'home_cache' / 'sam-overparam' / 'jax-compilation'
  compiled = entries(cache)
  assert compiled
  # Entries cut short, as by a process killed while writing them.
  for name in compiled:
    path = cache / name
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
  main_py(tmp_path / 'damaged', env=env)
  assert history(tmp_path / 'damaged') == history(tmp_path / 'first')
  # Off: nothing is read or written.
  before = {name: (cache / name).read_bytes() for name in entries(cache)}
  output = main_py(
      tmp_path / 'off', '--config.compilation_cache_dir=off', env=env
  )
  assert 'Compilation cache: off' in output
  assert {
      name: (cache / name).read_bytes() for name in entries(cache)
  } == before
  assert history(tmp_path / 'off') == history(tmp_path / 'first')
