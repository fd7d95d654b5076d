"""Devices and hosts: one `data` mesh axis over every device of every process.

Parameters and optimizer state are replicated; batches and the recurrent carry
are split along their batch axis. A batch that the devices cannot split evenly is
padded with rows whose targets are masked out, so any batch size runs on any
number of devices with the same loss and gradients. The same code runs on one
CPU, several GPUs, a TPU slice, or several hosts after `jax.distributed.initialize()`.
"""

from __future__ import annotations

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'


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
