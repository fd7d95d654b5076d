"""Trains a character-level language model.

This file is intentionally thin: the logic lives in `rnnlm.training.train`, which tests
and notebooks import. Running it again on the same --workdir resumes the run.

  python experiments/train.py --workdir=runs/shakespeare
  python experiments/train.py --config=configs/tiny.py --workdir=/tmp/tiny \
      --config.model.hidden_size=64
"""

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from rnnlm.training import hostmem
from rnnlm.training import parallel
from rnnlm.training import train
from rnnlm.errors import report_user_errors

_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for this run (resumed if it holds one).')
config_flags.DEFINE_config_file('config', 'configs/shakespeare.py', 'Training config file.',
                                lock_config=True)
_COORDINATOR = flags.DEFINE_string('coordinator_address', '',
                                   'host:port of process 0, for a multi-process (multi-host) run.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', 1, 'Processes in a multi-process run.')
_PROCESS_ID = flags.DEFINE_integer('process_id', 0, "This process's index in a multi-process run.")
_DISTRIBUTED = flags.DEFINE_enum(
    'distributed', 'auto', ['auto', 'on', 'off'],
    'Without --coordinator_address: auto joins a multi-process job when a launcher'
    ' (srun, mpirun, a multi-host TPU slice) started this process, on always lets JAX'
    ' detect one (e.g. Kubernetes), off never does.')
_RETAIN_MEMORY = flags.DEFINE_bool(
    'retain_host_memory', True,
    'Keep freed host memory for reuse instead of returning it to the OS after every step'
    ' (glibc; see rnnlm/training/hostmem.py): fewer page faults, faster CPU training.')
flags.mark_flags_as_required(['workdir'])


@report_user_errors
def main(argv):
  if _RETAIN_MEMORY.value:
    hostmem.retain_freed_memory()
  parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                  mode=_DISTRIBUTED.value)
  logging.info('JAX process %d / %d, devices: %s', jax.process_index(), jax.process_count(),
               jax.devices())
  train.train_and_evaluate(flags.FLAGS.config, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
