r"""Trains a grid of main.py runs: python sweep.py --workdir=DIR --config=FILE.

The grid is the cartesian product of `--sweep` axes, e.g.

  python sweep.py --workdir=runs/mnist_width --config=configs/mnist_mlp.py \
      --sweep='num_neurons=[(75,25),(150,50),(300,100)]' \
      --sweep='optimizer=[sgd,sam]' --sweep='seed=[0,1,2]' --set=num_epochs=20

or comes from a sweep config (configs/sweeps/*.py), which command-line
`--sweep`, `--set` and `--config` flags extend or override:

  python sweep.py --workdir=runs/mnist_width \
      --sweep_config=configs/sweeps/mnist_mlp_width.py --parallel=2

Each run's workdir is a subdirectory named by the run's grid values, e.g.
DIR/num_neurons=75_25,optimizer=sgd,seed=0, and its output goes to train.log
in that directory. Running the same command again skips finished runs (those
whose summary.json holds the run's config) and resumes the others from their
checkpoints. A failed or diverged run does not stop the others; the table
printed at the end gives each run's status and error, and the exit code is 1
when any run failed or diverged.

--launcher=local (the default) runs each as a `python main.py` process on
this machine, --parallel at a time (sweeps/local.py). SIGTERM, SIGINT
(Ctrl-C), SIGUSR1 or SIGUSR2 stops the running runs, each with a checkpoint,
and exits with 75; the same command resumes.

--launcher=slurm submits each as a SLURM job through submitit
(sweeps/slurm.py), with the resources of the --slurm_* flags or the sweep
config's 'slurm' field, and waits for them; with --detach it returns once
they are submitted, and the same command later reports where each stands
and resubmits those neither finished nor queued. Preempted jobs and jobs
that reach their time limit checkpoint and are requeued; they resume
exactly. A signal ends the wait (exit 75), not the jobs.

  python sweep.py --launcher=slurm --slurm_partition=gpu \
      --slurm_gpus_per_node=1 --slurm_time=240 --workdir=runs/cifar_width \
      --sweep_config=configs/sweeps/cifar10_resnet18_width.py
"""

from collections.abc import Sequence
import pathlib
import shlex

from absl import app
from absl import flags

from configuration import cli
from configuration import config_util
from runs import outcomes
from sweeps import local
from sweeps import slurm
from sweeps import slurm_jobs
from sweeps.plan import build_sweep
from sweeps.plan import is_finished
from sweeps.plan import plan_runs
from sweeps.plan import SweepError

FLAGS = flags.FLAGS
# The SLURM flags: --slurm_<name> sets slurm_jobs.SlurmSettings.<name>.
_SLURM_FLAGS = (
    'partition',
    'time',
    'nodes',
    'gpus_per_node',
    'tasks_per_node',
    'cpus_per_task',
    'account',
    'signal_delay_s',
    'max_timeouts',
)


def define_flags() -> None:
  """The command line's flags (defined when run as a script, so that tests
  can import this module beside others that define --workdir)."""
  flags.DEFINE_string(
      'workdir', None, 'Directory holding one subdirectory per ' 'run.'
  )
  flags.DEFINE_string(
      'config',
      None,
      'Training config file handed to main.py '
      '(relative to the current directory); replaces the sweep '
      "config's.",
  )
  flags.DEFINE_multi_string(
      'sweep',
      [],
      'An axis of the grid, KEY=[V1,V2,...], '
      "e.g. 'num_neurons=[(75,25),(150,50)]'; values are "
      'passed to main.py as --config.KEY=V. Repeat for '
      'more axes; the first axis varies slowest.',
  )
  flags.DEFINE_string(
      'sweep_config',
      None,
      'Python file whose get_sweep() '
      'returns the grid (see configs/sweeps/).',
  )
  flags.DEFINE_multi_string(
      'set',
      [],
      'KEY=VALUE given to every run (not part '
      'of the run names), e.g. num_epochs=10.',
  )
  flags.DEFINE_integer(
      'parallel',
      1,
      'Runs trained at the same time, each in '
      'its own process. Above 1, runs allocate accelerator '
      'memory as needed (XLA_PYTHON_CLIENT_PREALLOCATE=false) '
      'so that they can share a GPU.',
  )
  flags.DEFINE_bool(
      'dry_run',
      False,
      'Print the runs and their main.py ' 'commands without running anything.',
  )
  flags.DEFINE_enum(
      'launcher',
      'local',
      ['local', 'slurm'],
      'local: main.py '
      'processes on this machine; slurm: one SLURM job per run, '
      'submitted with submitit (see the --slurm_* flags).',
  )
  flags.DEFINE_bool(
      'detach',
      False,
      'With --launcher=slurm: return once the '
      'jobs are submitted. The same command later reports each '
      "run's status and resubmits runs neither finished nor "
      'queued.',
  )
  flags.DEFINE_float(
      'slurm_poll_seconds',
      10,
      'With --launcher=slurm: ' 'seconds between two looks at the queue.',
  )
  flags.DEFINE_string('slurm_partition', None, 'SLURM partition of the jobs.')
  flags.DEFINE_integer(
      'slurm_time',
      None,
      "Each job's time limit in minutes "
      '(default 60); a longer run is requeued from its '
      'checkpoint (up to --slurm_max_timeouts times).',
  )
  flags.DEFINE_integer(
      'slurm_nodes',
      None,
      'Nodes per run (default 1); the ' 'tasks of all nodes form one JAX run.',
  )
  flags.DEFINE_integer(
      'slurm_gpus_per_node',
      None,
      'GPUs per node (default ' '0); one task per GPU.',
  )
  flags.DEFINE_integer(
      'slurm_tasks_per_node',
      None,
      'Tasks (processes) per ' 'node; default one per GPU, or 1.',
  )
  flags.DEFINE_integer('slurm_cpus_per_task', None, 'CPUs per task.')
  flags.DEFINE_string('slurm_account', None, 'SLURM account to charge.')
  flags.DEFINE_integer(
      'slurm_signal_delay_s',
      None,
      'Seconds between the '
      'warning signal and the time limit (default 120): '
      'time for the checkpoint.',
  )
  flags.DEFINE_integer(
      'slurm_max_timeouts',
      None,
      'How often a run that ' 'reaches the time limit is requeued (default 3).',
  )
  flags.DEFINE_multi_string(
      'slurm_option',
      [],
      'Any other sbatch option as '
      'NAME=VALUE, e.g. qos=high or constraint=a100; '
      'repeat for more.',
  )
  flags.mark_flag_as_required('workdir')


def slurm_settings(sweep_slurm_fields: dict) -> slurm_jobs.SlurmSettings:
  """The sweep config's SLURM settings, updated with the flags given."""
  values = dict(sweep_slurm_fields)
  for name in _SLURM_FLAGS:
    value = FLAGS[f'slurm_{name}'].value
    if value is not None:
      values[name] = value
  options = dict(values.get('options', {}))
  for text in FLAGS.slurm_option:
    name, equals, value = text.partition('=')
    if not equals or not name.strip():
      raise SweepError(
          f'--slurm_option={text!r}: expected NAME=VALUE, e.g. ' 'qos=high'
      )
    options[name.strip()] = value.strip()
  values['options'] = options
  return slurm_jobs.SlurmSettings.from_dict(values)


def main(argv: Sequence[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if FLAGS.parallel < 1:
    raise app.UsageError(f'--parallel must be >= 1, got {FLAGS.parallel}')
  if FLAGS.detach and FLAGS.launcher != 'slurm':
    raise app.UsageError('--detach needs --launcher=slurm')
  try:
    workdir = pathlib.Path(cli.absolute_path(FLAGS.workdir, '--workdir'))
    sweep = build_sweep(
        FLAGS.config, FLAGS.sweep, FLAGS.set, FLAGS.sweep_config
    )
    runs, shared = plan_runs(sweep, workdir)
    settings = (
        slurm_settings(sweep.slurm) if FLAGS.launcher == 'slurm' else None
    )
  except (SweepError, config_util.ConfigError) as e:
    cli.fail(str(e))
  for point in shared:
    print(
        f'{point.name}: the same run as {point.same_as} (they differ only '
        f'in {", ".join(point.unread)}, which does not change what it '
        'trains); trained once',
        flush=True,
    )
  if FLAGS.dry_run:
    for run in runs:
      status = 'finished' if is_finished(run) else 'to run'
      print(f'{run.name} ({status}): {shlex.join(run.command)}')
    return 0
  interrupted = False
  if settings is None:
    results = local.run_all(runs, FLAGS.parallel)
  else:
    results, interrupted = slurm.run_all(
        runs, settings, FLAGS.detach, FLAGS.slurm_poll_seconds
    )
  print(local.format_table(results))
  code = local.exit_code(results)
  if interrupted:
    print(
        'the SLURM jobs go on; the same command reports their status and '
        'waits again',
        flush=True,
    )
    return code or outcomes.EXIT_STOPPED
  if code == outcomes.EXIT_STOPPED:
    print('stopped; run the same command again to resume', flush=True)
  return code


if __name__ == '__main__':
  define_flags()
  app.run(main)
