r"""analyze.py against PyHessian: the top Hessian eigenvalue and trace of an
MLP run, as whole processes, at equal or better accuracy.

  python -m benchmarks.hessian_vs_pyhessian --workdir=RUN_DIR \
      --pyhessian_python=TORCH_ENV/bin/python [--repeats=3] \
      [--output=hessian_vs_pyhessian.json]

TORCH_ENV is a separate environment with `pip install torch pyhessian`
(neither is a requirement of this project). RUN_DIR is a finished run of
model=mlp without pruning (e.g. the Fashion-MNIST MLP); it is copied, and
its own analysis is left alone.

Both tools measure the training loss on the same examples: analyze.py's
analysis subset (analysis.num_examples, default 2048), which this script
exports with the run's weights for PyHessian (benchmarks/pyhessian_mlp.py,
its default settings). Then, one untimed run of each first (it fills the
compilation cache and calibrates the trace), `--repeats` interleaved pairs
of timed processes:

* PyHessian: `python pyhessian_mlp.py EXPORT.npz` (import torch, build the
  model, read the arrays, top eigenvalue, trace);
* analyze.py measuring what PyHessian does: parts=('hessian',), top_k=1,
  most_negative_eigenvalue=False, slq_probes=0, and trace_tolerance set to
  the relative standard error PyHessian's trace reached (its samples' std /
  sqrt(n) / |mean|), so the trace is at least as accurate. Lanczos keeps
  its default tolerance (1e-3).

Accuracy is judged against a reference computed here: the top eigenvalue
from Lanczos run to the end of 100 steps (its residual is reported) and the
trace from `--reference_probes` Hutchinson probes. Reported: the median
seconds of each tool's processes and their ratio, each tool's values, errors
and Hessian-vector products, and one analyze.py process with the subset
cache off (a first analysis of the dataset: TensorFlow imported and the
training split read).
"""

import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import numpy as np

from analysis import measure
from analysis import subset_cache
import analyze
from configs import default
from input_pipeline import sources
from runs import run_state
from runtime import parallel

flags.DEFINE_string('workdir', None, 'A finished MLP run of main.py.')
flags.DEFINE_string(
    'pyhessian_python',
    None,
    'The Python interpreter that has torch and pyhessian.',
)
flags.DEFINE_integer('repeats', 3, 'Timed processes of each tool.')
flags.DEFINE_integer(
    'reference_probes', 400, 'Hutchinson probes of the reference trace.'
)
flags.DEFINE_string(
    'output', 'hessian_vs_pyhessian.json', 'Where to write JSON.'
)
flags.mark_flags_as_required(['workdir', 'pyhessian_python'])
FLAGS = flags.FLAGS

REPO = pathlib.Path(__file__).resolve().parents[1]
# Lanczos steps of the reference top eigenvalue (all of them taken).
REFERENCE_STEPS = 100


def export(
    analyzer: measure.Analyzer,
    state: run_state.TrainState,
    dataset: str,
    path: pathlib.Path,
) -> None:
  """The analysis subset (normalized, flattened) and the Dense layers, as
  pyhessian_mlp.py reads them."""
  images = np.asarray(analyzer.data['images'])
  images = images.reshape((-1,) + images.shape[2:])
  inputs = np.asarray(sources.normalize(images, sources.get_spec(dataset)))
  params = jax.device_get(state.params)
  layers = {}
  for i in range(len(params)):
    layers[f'kernel_{i}'] = np.asarray(params[f'Dense_{i}']['kernel'])
    layers[f'bias_{i}'] = np.asarray(params[f'Dense_{i}']['bias'])
  np.savez(
      path,
      inputs=inputs.reshape(len(inputs), -1),
      labels=np.asarray(analyzer.data['labels']).reshape(-1),
      **layers,
  )


def timed(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[float, str]:
  """(seconds of the whole process, its stdout); raises if it fails."""
  start = time.perf_counter()
  done = subprocess.run(
      command, cwd=REPO, env=env, capture_output=True, text=True, check=False
  )
  seconds = time.perf_counter() - start
  if done.returncode:
    raise RuntimeError(f'{command[:2]} failed:\n{done.stderr[-3000:]}')
  return seconds, done.stdout


def pyhessian_results(stdout: str) -> dict:
  results = json.loads(stdout.strip().splitlines()[-1])
  samples = np.array(results.pop('trace_samples'))
  results.update(
      trace=float(samples.mean()),
      trace_stderr=float(samples.std(ddof=1) / np.sqrt(len(samples))),
      trace_probes=len(samples),
  )
  return results


def analyze_results(run_copy: pathlib.Path) -> dict:
  analysis = json.loads((run_copy / 'analysis' / 'analysis.json').read_text())
  measured = analysis['hessian']
  return {
      'top_eigenvalue': measured['top_eigenvalues'][0],
      'top_eigenvalue_residual': measured['top_eigenvalue_residuals'][0],
      'lanczos_steps': measured['lanczos_steps'],
      'trace': measured['trace'],
      'trace_stderr': measured['trace_stderr'],
      'trace_probes': measured['trace_probes'],
      'seconds': analysis['seconds'],
  }


def main(argv):
  del argv
  workdir = pathlib.Path(FLAGS.workdir).resolve()
  config = analyze.analysis_config(str(workdir), default.get_config(), {})
  if (
      config.model != 'mlp'
      or config.num_replicas != 1
      or config.get('sparsity')
  ):
    raise app.UsageError(
        '--workdir must be a run of one unpruned MLP '
        '(model=mlp, num_replicas=1, sparsity 0)'
    )
  _, state, _ = run_state.load_checkpoint(str(workdir), config)
  # Loads (and caches, as analyze.py would) the subset both tools measure.
  analyzer = measure.Analyzer(config, parallel.create_mesh())
  values, residuals, _, _ = analyzer.eigenpairs(
      state, REFERENCE_STEPS, 1, tolerance=0.0, converge_smallest=False
  )
  trace, trace_stderr, _ = analyzer.trace(
      state, FLAGS.reference_probes, tolerance=0.0
  )
  results = {
      'workdir': str(workdir),
      'num_params': run_state.count_params(state.params),
      'num_examples': config.analysis.num_examples,
      'cpus': os.cpu_count(),
      'reference': {
          'top_eigenvalue': float(values[0]),
          'top_eigenvalue_residual': float(residuals[0]),
          'lanczos_steps': REFERENCE_STEPS,
          'trace': trace,
          'trace_stderr': trace_stderr,
          'trace_probes': FLAGS.reference_probes,
      },
  }
  with tempfile.TemporaryDirectory() as scratch:
    scratch = pathlib.Path(scratch)
    export(analyzer, state, config.dataset, scratch / 'export.npz')
    run_copy = scratch / 'run'
    shutil.copytree(
        workdir, run_copy, ignore=shutil.ignore_patterns('analysis', 'events.*')
    )
    pyhessian_command = [
        FLAGS.pyhessian_python,
        str(REPO / 'benchmarks' / 'pyhessian_mlp.py'),
        str(scratch / 'export.npz'),
    ]
    calibration = pyhessian_results(timed(pyhessian_command)[1])
    tolerance = calibration['trace_stderr'] / abs(calibration['trace'])
    analyze_command = [
        sys.executable,
        str(REPO / 'analyze.py'),
        f'--workdir={run_copy}',
        "--config.analysis.parts=('hessian',)",
        '--config.analysis.slq_probes=0',
        '--config.analysis.top_k=1',
        '--config.analysis.most_negative_eigenvalue=False',
        f'--config.analysis.trace_tolerance={tolerance:.6f}',
    ]
    timed(analyze_command)  # Warm-up: compiles into the cache.
    seconds = {'pyhessian': [], 'analyze': []}
    for _ in range(FLAGS.repeats):
      elapsed, stdout = timed(pyhessian_command)
      seconds['pyhessian'].append(elapsed)
      results['pyhessian'] = pyhessian_results(stdout)
      seconds['analyze'].append(timed(analyze_command)[0])
      results['analyze'] = analyze_results(run_copy)
    cold_environment = {
        **os.environ,
        subset_cache.ENVIRONMENT_VARIABLE: subset_cache.OFF,
    }
    results['analyze_subset_cache_off_seconds'] = timed(
        analyze_command, cold_environment
    )[0]
  results['analyze']['trace_tolerance'] = tolerance
  reference = results['reference']
  for tool in ('pyhessian', 'analyze'):
    measured = results[tool]
    measured['process_seconds'] = seconds[tool]
    measured['median_process_seconds'] = statistics.median(seconds[tool])
    measured['top_eigenvalue_relative_error'] = abs(
        measured['top_eigenvalue'] / reference['top_eigenvalue'] - 1
    )
    measured['trace_relative_stderr'] = measured['trace_stderr'] / abs(
        measured['trace']
    )
  results['analyze_over_pyhessian'] = (
      results['analyze']['median_process_seconds']
      / results['pyhessian']['median_process_seconds']
  )
  print(json.dumps(results, indent=2))
  with open(FLAGS.output, 'w') as f:
    json.dump(results, f, indent=2)


if __name__ == '__main__':
  app.run(main)
