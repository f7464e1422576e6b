"""Several processes, one run: JAX's multi-controller runtime.

Every process runs the same program on its own devices; the mesh spans all
of them (parallel.create_mesh), each process feeds its slice of every
global batch, and the collectives cross processes. `initialize` starts
`jax.distributed` before anything touches a device:

* given --coordinator_address, --num_processes and --process_id (all three
  or none), with those;
* else under a cluster manager JAX recognizes (SLURM with several tasks,
  Open MPI), from its environment;
* else not at all: one process.

On CPUs the processes' collectives run over gloo.
"""

import os

from absl import flags
from absl import logging
import jax

from configuration import config_util

# Environment variables that say a launcher started several tasks, each of
# which JAX's cluster detection can place.
_CLUSTER_SIZE_VARIABLES = ('SLURM_NTASKS', 'OMPI_COMM_WORLD_SIZE')


def define_flags() -> None:
  flags.DEFINE_string(
      'coordinator_address',
      None,
      'HOST:PORT of process 0, '
      'for a run of several processes started by hand.',
  )
  flags.DEFINE_integer('num_processes', None, 'Processes of the run.')
  flags.DEFINE_integer(
      'process_id', None, 'This process, 0 .. ' 'num_processes - 1.'
  )


def _launched_as_several_tasks() -> bool:
  return any(
      int(os.environ.get(name, '1')) > 1 for name in _CLUSTER_SIZE_VARIABLES
  )


def initialize() -> None:
  """Starts jax.distributed if the run has several processes (see the
  module docstring); raises config_util.ConfigError for an incomplete set
  of flags."""
  values = {
      name: flags.FLAGS[name].value
      for name in ('coordinator_address', 'num_processes', 'process_id')
  }
  given = [name for name, value in values.items() if value is not None]
  config_util.require(
      len(given) in (0, 3),
      f'--{", --".join(given)} given without --'
      + ', --'.join(sorted(set(values) - set(given)))
      + ': give all three of --coordinator_address, --num_processes and '
      '--process_id, or none',
  )
  if given:
    config_util.require(
        values['num_processes'] >= 1
        and 0 <= values['process_id'] < values['num_processes'],
        f'--process_id={values["process_id"]} must be in 0 .. '
        f'--num_processes - 1 = {values["num_processes"] - 1}',
    )
    if values['num_processes'] == 1:
      return
  if not given and not _launched_as_several_tasks():
    return
  # Cross-process collectives on CPUs; GPUs and TPUs use their own.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if given:
    jax.distributed.initialize(**values)
  else:
    jax.distributed.initialize()
  logging.info(
      'JAX process %d of %d.', jax.process_index(), jax.process_count()
  )
