r"""Time of the Hessian analysis of a run, compilation and steady state.

  python -m benchmarks.analysis_speed --workdir=RUN_DIR \
      [--config.analysis.num_examples=2048] [--output=analysis_speed.json]

On the run's newest checkpoint (its first replica; settings as
analyze.py's), times each of these twice, the first call including
compilation:

* one Hessian-vector product on the analysis subset;
* the top eigenvalue (what training logs), Lanczos stopped at
  analysis.lanczos_tolerance on the top eigenvalue alone, and
  with all analysis.lanczos_iterations steps (tolerance 0), with the steps
  each took and their relative difference;
* the trace (Hutchinson, to analysis.trace_tolerance or
  analysis.hutchinson_probes products), with the probes it took;
* what training logs every analysis_every_epochs epochs
  (Analyzer.training_scalars: both of the above and one-step sharpness).
"""

import functools
import json
import os
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from analysis import measure
import analyze
from runs import run_state
from runtime import parallel

analyze.define_flags()  # --workdir, --config.analysis.*
flags.DEFINE_string('output', 'analysis_speed.json', 'Where to write JSON.')
FLAGS = flags.FLAGS


def _twice(fn) -> dict[str, float]:
  """Seconds of a first (compiling) and a second call of `fn`."""
  seconds = {}
  for name in ('first_call', 'steady'):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    seconds[name] = time.perf_counter() - start
  return seconds


def main(argv):
  del argv
  workdir = os.path.abspath(FLAGS.workdir)
  config = analyze.analysis_config(
      workdir, FLAGS.config, config_flags.get_override_values(FLAGS['config'])
  )
  _, state, _ = run_state.load_checkpoint(workdir, config)
  state = analyze.replicas(config, state)[0]
  settings = config.analysis
  analyzer = measure.Analyzer(config, parallel.create_mesh())
  matvec, support = analyzer.operator(state)
  results = {
      'model': config.model,
      'dataset': config.dataset,
      'num_params': run_state.count_params(state.params),
      'num_examples': settings.num_examples,
      'lanczos_iterations': settings.lanczos_iterations,
      'hutchinson_probes': settings.hutchinson_probes,
      'devices': jax.device_count(),
      'hvp': _twice(lambda: matvec(support)),
      'lanczos_tolerance': settings.lanczos_tolerance,
      'trace_tolerance': settings.trace_tolerance,
      'training_scalars': _twice(lambda: analyzer.training_scalars(state)),
  }
  for name, tolerance in (
      ('top_eigenvalue', None),
      ('top_eigenvalue_all_steps', 0.0),
  ):
    eigenpairs = functools.partial(
        analyzer.eigenpairs,
        state,
        settings.lanczos_iterations,
        1,
        tolerance,
        converge_smallest=False,
    )
    results[name] = _twice(eigenpairs)
    values, _, _, steps = eigenpairs()
    results[name].update(value=float(values[0]), lanczos_steps=steps)
  for name, tolerance in (('trace', None), ('trace_all_probes', 0.0)):
    trace = functools.partial(
        analyzer.trace, state, settings.hutchinson_probes, tolerance
    )
    if name not in results:
      results[name] = _twice(trace)
    value, stderr, probes = trace()
    results[name].update(value=value, stderr=stderr, probes=probes)
  results['top_eigenvalue_relative_difference'] = abs(
      results['top_eigenvalue']['value']
      / results['top_eigenvalue_all_steps']['value']
      - 1
  )
  print(json.dumps(results, indent=2))
  with open(FLAGS.output, 'w') as f:
    json.dump(results, f, indent=2)


if __name__ == '__main__':
  app.run(main)
