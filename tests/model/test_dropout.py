"""Dropout masks: rate, expectation, independence, gradients, and the same mask on
one device or split over four."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from rnnlm.model import dropout as dropout_lib
from rnnlm.training import parallel


def _within(freq: float, p: float, n: int, sigmas: float = 5.0) -> bool:
  return abs(freq - p) < sigmas * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize('rate', [0.1, 0.25, 0.5])
def test_keep_frequency_is_one_minus_rate(rate):
  shape = (100, 64, 160)  # [T, B, H], about a million draws.
  keep = np.asarray(dropout_lib.keep_mask(jax.random.key(1), shape, rate, batch_axis=1))
  q = dropout_lib.quantized_rate(rate)
  assert abs(q - rate) <= 2 ** -17
  assert _within(keep.mean(), 1 - q, keep.size)
  # Each of the four 16-bit lanes of a hash, and each row and time, keeps at the rate.
  for lane in range(4):
    assert _within(keep[..., lane::4].mean(), 1 - q, keep[..., lane::4].size)
  row_freq = keep.mean(axis=(0, 2))
  assert np.all(np.abs(row_freq - (1 - q)) < 5 * np.sqrt(q * (1 - q) / (100 * 160)))


def test_rows_and_keys_are_independent_and_keys_reproduce():
  shape = (50, 8, 512)
  a = np.asarray(dropout_lib.keep_mask(jax.random.key(3), shape, 0.5, batch_axis=1), np.float64)
  b = np.asarray(dropout_lib.keep_mask(jax.random.key(4), shape, 0.5, batch_axis=1), np.float64)
  again = np.asarray(dropout_lib.keep_mask(jax.random.key(3), shape, 0.5, batch_axis=1))
  np.testing.assert_array_equal(a, again)
  n = shape[0] * shape[2]
  bound = 5 / np.sqrt(n)  # Correlation of independent masks: ~N(0, 1/n).
  for i in range(1, shape[1]):
    assert abs(np.corrcoef(a[:, 0].ravel(), a[:, i].ravel())[0, 1]) < bound
  assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 5 / np.sqrt(a.size)


def test_expectation_and_gradient():
  rate = 0.3
  x = jnp.asarray(np.random.default_rng(0).normal(size=(40, 16, 96)), jnp.float32)
  key = jax.random.key(7)
  keep = np.asarray(dropout_lib.keep_mask(key, x.shape, rate, batch_axis=1), np.float64)
  scale = 1.0 / (1.0 - dropout_lib.quantized_rate(rate))
  y = np.asarray(dropout_lib.dropout(x, rate, key, batch_axis=1), np.float64)
  np.testing.assert_allclose(y, np.asarray(x, np.float64) * keep * scale, rtol=1e-6)
  w = jnp.asarray(np.random.default_rng(1).normal(size=x.shape), jnp.float32)
  grad = jax.grad(lambda v: jnp.sum(w * dropout_lib.dropout(v, rate, key, batch_axis=1)))(x)
  np.testing.assert_allclose(np.asarray(grad, np.float64),
                             np.asarray(w, np.float64) * keep * scale, rtol=1e-6)
  ones = dropout_lib.dropout(jnp.ones((200, 50, 100)), rate, key, batch_axis=1)
  q = dropout_lib.quantized_rate(rate)
  # E[y] = 1 exactly; the mean of n draws is within 5 standard deviations.
  assert abs(float(ones.mean()) - 1.0) < 5 * scale * np.sqrt(q * (1 - q) / ones.size)


def test_identity_without_key_or_rate():
  x = jnp.arange(24.0).reshape(2, 3, 4)
  assert dropout_lib.dropout(x, 0.5, None, batch_axis=1) is x
  assert dropout_lib.dropout(x, 0.0, jax.random.key(0), batch_axis=1) is x


def test_same_mask_when_the_batch_is_split_over_devices():
  assert len(jax.devices()) == 4, 'conftest forces 4 host devices'
  mesh = parallel.make_mesh(jax.devices())
  x = jnp.ones((20, 8, 64))
  key = jax.random.key(11)
  f = jax.jit(lambda v, k: dropout_lib.dropout(v, 0.25, k, batch_axis=1))
  one = np.asarray(f(x, key))
  sharded = jax.device_put(x, NamedSharding(mesh, P(None, 'data')))
  split = f(sharded, key)
  np.testing.assert_array_equal(np.asarray(split), one)
  # Each device draws its own rows: nothing is gathered.
  assert 'all-gather' not in f.lower(sharded, key).compile().as_text()
