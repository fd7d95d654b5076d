"""Dropout with masks that cost a third of `jax.random.bernoulli`'s on a CPU.

`jax.random.bernoulli` draws a float32 uniform per element, and with JAX's default
(partitionable) threefry every element costs one threefry2x32 hash, of which 32 of
the 64 output bits are used. On a 2-core CPU that was about a tenth of a 2 x 256
LSTM training step. Here each batch row gets its own key, and the row's mask is
cut from 16-bit lanes of the non-partitionable threefry stream, four lanes per
hash: an eighth of the hashes. A row's draws depend only on its key, so the mask
splits over devices along the batch axis like the activations it multiplies.

The rate is rounded to a multiple of 2^-16 (at most 7.7e-6 away) and the kept
values are scaled by the reciprocal of the rounded keep rate, so the expectation
is exact.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LANE_BITS = 16


def quantized_rate(rate: float) -> float:
  """The drop probability actually used for `rate`."""
  return round(rate * 2 ** LANE_BITS) / 2 ** LANE_BITS


def keep_mask(key: jax.Array, shape: tuple[int, ...], rate: float, batch_axis: int) -> jax.Array:
  """A boolean mask of `shape`, True with probability 1 - quantized_rate(rate)."""
  threshold = round(rate * 2 ** LANE_BITS)
  row_shape = tuple(d for i, d in enumerate(shape) if i != batch_axis)

  def row(k):
    with jax.threefry_partitionable(False):  # Lanes of one hash stream: 4 per hash.
      return jax.random.bits(k, row_shape, jnp.uint16)

  lanes = jax.vmap(row, out_axes=batch_axis)(jax.random.split(key, shape[batch_axis]))
  return lanes >= jnp.uint16(threshold)


def dropout(x: jax.Array, rate: float, key: jax.Array | None, batch_axis: int) -> jax.Array:
  """Inverted dropout of x; the identity when `key` is None (evaluation) or rate is 0."""
  if key is None or rate == 0.0:
    return x
  keep = keep_mask(key, x.shape, rate, batch_axis)
  return jnp.where(keep, x * jnp.asarray(1.0 / (1.0 - quantized_rate(rate)), x.dtype),
                   jnp.zeros((), x.dtype))


def dropout_bernoulli(x: jax.Array, rate: float, key: jax.Array | None, batch_axis: int
                      ) -> jax.Array:
  """The same with `jax.random.bernoulli` masks (what `flax.nnx.Dropout` does): the
  reference that `dropout` is timed and tested against."""
  del batch_axis
  if key is None or rate == 0.0:
    return x
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / jnp.asarray(1.0 - rate, x.dtype), jnp.zeros((), x.dtype))


IMPLEMENTATIONS = {'lanes': dropout, 'bernoulli': dropout_bernoulli}
