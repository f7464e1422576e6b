r"""Start-up of a training process, with and without the compilation cache.

  python -m benchmarks.startup --output=/tmp/startup.json

Runs `main.py` on a config (the quickstart by default) in fresh workdirs,
one process after another:

* `cold`: empty per-user caches (compiled programs, generated datasets),
  as a user's first run;
* `warm`: the same config again, as every later run of a sweep or a rerun;
* `off`: `--config.compilation_cache_dir=off`, compiling everything (the
  generated dataset from the cache).

and reports for each the seconds from starting the process to the end of
its first training dispatch (the log line train.py writes then, which
includes imports, loading the data, initialization and compilation), the
whole process's seconds, and the cache entries it added. The three are
repeated `--repeats` times, interleaved, and the median counts.
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

from input_pipeline import mnist_1d

flags.DEFINE_string('config', 'configs/quickstart.py', 'The config to run.')
flags.DEFINE_integer('num_epochs', 2, 'Epochs per run.')
flags.DEFINE_integer('repeats', 3, 'Runs of each kind; the median counts.')
flags.DEFINE_string('output', 'startup.json', 'Where to write the JSON.')
FLAGS = flags.FLAGS

REPO = pathlib.Path(__file__).resolve().parent.parent
FIRST_DISPATCH = 'First dispatch of the'


def timed_run(
    workdir: pathlib.Path, cache: str, data_cache: pathlib.Path
) -> dict[str, float]:
  """Runs main.py; returns the seconds to its first dispatch and in all."""
  command = [
      sys.executable,
      'main.py',
      f'--workdir={workdir}',
      f'--config={FLAGS.config}',
      f'--config.num_epochs={FLAGS.num_epochs}',
      f'--config.compilation_cache_dir={cache}',
  ]
  env = dict(os.environ, **{mnist_1d.GENERATED_CACHE_VARIABLE: str(data_cache)})
  start = time.perf_counter()
  process = subprocess.Popen(
      command,
      cwd=REPO,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
      env=env,
  )
  first_dispatch = None
  output = []
  for line in process.stdout:
    output.append(line)
    if first_dispatch is None and FIRST_DISPATCH in line:
      first_dispatch = time.perf_counter() - start
  if process.wait() != 0 or first_dispatch is None:
    raise RuntimeError(f'{command} failed:\n{"".join(output[-30:])}')
  return {
      'first_dispatch_seconds': first_dispatch,
      'process_seconds': time.perf_counter() - start,
  }


def main(argv):
  del argv
  runs = {'cold': [], 'warm': [], 'off': []}
  with tempfile.TemporaryDirectory() as root:
    root = pathlib.Path(root)
    for repeat in range(FLAGS.repeats):
      cache = root / f'cache_{repeat}'
      for kind in runs:
        entries = len(os.listdir(cache)) if cache.exists() else 0
        result = timed_run(
            root / f'{kind}_{repeat}',
            'off' if kind == 'off' else str(cache),
            root / f'data_cache_{repeat}',
        )
        result['cache_entries_added'] = (
            len(os.listdir(cache)) if cache.exists() else 0
        ) - entries
        runs[kind].append(result)
  results = {
      'config': FLAGS.config,
      'num_epochs': FLAGS.num_epochs,
      'repeats': FLAGS.repeats,
      'runs': runs,
      'median': {
          kind: {
              key: statistics.median(r[key] for r in kind_runs)
              for key in kind_runs[0]
          }
          for kind, kind_runs in runs.items()
      },
  }
  print(
      f'{"":6} {"to first dispatch":>18} {"whole process":>14} '
      f'{"cache entries added":>20}'
  )
  for kind, median in results['median'].items():
    print(
        f'{kind:6} {median["first_dispatch_seconds"]:17.2f}s '
        f'{median["process_seconds"]:13.2f}s '
        f'{median["cache_entries_added"]:20.0f}'
    )
  with open(FLAGS.output, 'w') as f:
    json.dump(results, f, indent=2)


if __name__ == '__main__':
  app.run(main)
