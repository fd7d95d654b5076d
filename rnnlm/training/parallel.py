"""Devices and hosts: one `data` mesh axis over every device of every process.

Parameters and optimizer state are replicated; batches and the recurrent carry
are split along their batch axis. A batch that the devices cannot split evenly is
padded with rows whose targets are masked out, so any batch size runs on any
number of devices with the same loss and gradients. The same code runs on one
CPU, several GPUs, a TPU slice, or several hosts after `jax.distributed.initialize()`.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from rnnlm.errors import UserError
from rnnlm.model.axes import DATA_AXIS


def make_mesh(devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def padded_rows(batch_size: int, mesh: Mesh) -> int:
  """`batch_size` rounded up to a multiple of the device count."""
  n = mesh.devices.size
  return -(-batch_size // n) * n


def note_padding(batch_size: int, mesh: Mesh, what: str = 'train.batch_size') -> None:
  """Logs the cost of a batch that the devices cannot split evenly."""
  rows = padded_rows(batch_size, mesh)
  if rows != batch_size:
    n = mesh.devices.size
    logging.warning(
        '%s=%d does not divide over %d devices: each batch is padded to %d rows, %d of them'
        ' masked out (the loss and gradients are those of the %d real rows; %.0f%% of the'
        ' compute is padding: a multiple of %d such as %d or %d avoids it)', what, batch_size,
        n, rows, rows - batch_size, batch_size, 100 * (rows - batch_size) / rows, n,
        max(n, rows - n), rows)


def pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
  """x [batch, ...] with zero rows appended up to `rows`."""
  if x.shape[0] == rows:
    return x
  return np.concatenate([x, np.zeros((rows - x.shape[0],) + x.shape[1:], x.dtype)])


def shard_batch(x: np.ndarray, mesh: Mesh) -> jax.Array:
  """Places a global host array [batch, ...] split over the data axis.

  Every process holds the same global array (batch streams are deterministic),
  and each device takes its rows, so this works across hosts too.
  """
  sharding = batch_sharding(mesh)
  return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def replicate(tree, mesh: Mesh):
  """Places every array of a pytree on all devices of the mesh."""
  sharding = replicated(mesh)
  return jax.tree.map(lambda a: jax.device_put(a, sharding), tree)


def shard_carry(carry, mesh: Mesh):
  """Places a model carry (pytree of [batch, hidden]) split over the data axis."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda a: jax.device_put(a, sharding), carry)


# The environment variables by which a launcher says it started several processes of
# one job (the ones JAX's own cluster detection reads to find the coordinator).
_SLURM = ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS', 'SLURM_PROCID', 'SLURM_LOCALID')


def detect_cluster(environ=None) -> str | None:
  """The multi-process launcher this process runs under, if it started more than one
  process: 'SLURM' (srun), 'Open MPI' (mpirun) or 'Cloud TPU' (a multi-host slice
  that names its workers); None on a laptop or a one-process job."""
  env = os.environ if environ is None else environ
  if all(v in env for v in _SLURM) and int(env['SLURM_NTASKS']) > 1:
    return 'SLURM'
  if 'OMPI_MCA_orte_hnp_uri' in env and int(env.get('OMPI_COMM_WORLD_SIZE', '1')) > 1:
    return 'Open MPI'
  if len([h for h in env.get('TPU_WORKER_HOSTNAMES', '').split(',') if h]) > 1:
    return 'Cloud TPU'
  return None


def initialize_distributed(coordinator_address: str = '', num_processes: int = 0,
                           process_id: int = -1, cpu_collectives: str = 'gloo',
                           mode: str = 'auto') -> None:
  """Joins a multi-process (multi-host) JAX job, or does nothing for one process.

  With a coordinator address, joins that job. Otherwise `mode` says: 'auto' joins
  when `detect_cluster` finds a launcher (JAX then reads the process count, index
  and coordinator from it), 'on' always asks JAX to detect them (Kubernetes, GCE
  TPU pods), 'off' never joins. On CPU, collectives go through gloo.
  """
  if mode not in ('auto', 'on', 'off'):
    raise UserError(f'unknown --distributed={mode}; use auto, on or off')
  kwargs = {}
  if coordinator_address or num_processes > 1:
    kwargs.update(coordinator_address=coordinator_address, num_processes=num_processes,
                  process_id=process_id)
  elif mode == 'off':
    return
  elif mode == 'auto':
    cluster = detect_cluster()
    if cluster is None:
      return
    logging.info('Found a %s job of several processes: joining it with jax.distributed',
                 cluster)
  # Only the CPU backend reads this; it must be set before any backend starts.
  jax.config.update('jax_cpu_collectives_implementation', cpu_collectives)
  try:
    jax.distributed.initialize(**kwargs)
  except (ValueError, RuntimeError) as e:
    raise UserError(f'jax.distributed could not start ({str(e)[:200]}); give'
                    ' --coordinator_address, --num_processes and --process_id, or'
                    ' --distributed=off for one process') from e
