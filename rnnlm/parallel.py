"""Devices and hosts: one `data` mesh axis over every device of every process.

Parameters and optimizer state are replicated; batches and the recurrent carry
are split along their batch axis. The same code runs on one CPU, several GPUs,
a TPU slice, or several hosts after `jax.distributed.initialize()`.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from rnnlm.errors import UserError

DATA_AXIS = 'data'


def make_mesh(devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: Mesh, what: str = 'train.batch_size') -> None:
  n = mesh.devices.size
  if batch_size % n:
    raise UserError(f'{what}={batch_size} does not divide over {n} devices;'
                    f' use a multiple of {n}')


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


def initialize_distributed(coordinator_address: str = '', num_processes: int = 0,
                           process_id: int = -1, cpu_collectives: str = 'gloo') -> None:
  """Joins a multi-process (multi-host) JAX job; a no-op for one process.

  With no arguments on a cluster JAX can detect (SLURM, TPU pods, ...) it
  initializes from the environment. On CPU, collectives go through gloo.
  """
  if not coordinator_address and num_processes <= 1:
    return
  # Only the CPU backend reads this; it must be set before any backend starts.
  jax.config.update('jax_cpu_collectives_implementation', cpu_collectives)
  kwargs = {}
  if coordinator_address:
    kwargs.update(coordinator_address=coordinator_address, num_processes=num_processes,
                  process_id=process_id)
  jax.distributed.initialize(**kwargs)
