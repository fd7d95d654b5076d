"""bfloat16 LSTM kernels on AMX tiles (model.compute_dtype=bfloat16 on CPUs that have
AMX) against NumPy float64 references that round the matmul operands to bfloat16."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rnnlm.model import kernels
from rnnlm.model import recurrence
from rnnlm.model import CharLM

needs_amx = pytest.mark.skipif(not kernels.amx(), reason='no AMX bfloat16 kernels here')


def to_bf16(x):
  """float32 -> nearest bfloat16 (ties to even), returned as float64."""
  u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
  u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
  return (u.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def test_where_the_bf16_kernels_run():
  if not kernels.available():
    pytest.skip('no CPU kernels')
  reason = lambda cell, h: recurrence.kernel_unavailable_reason(cell, h, jnp.bfloat16)
  if kernels.amx():
    assert reason('lstm', 64) is None
    assert recurrence.resolve('auto', 'lstm', 64, jnp.bfloat16) == 'kernel'
    assert 'multiple of 32' in reason('lstm', 48)
    assert 'lstm only' in reason('gru', 64)
  else:
    assert 'AMX' in reason('lstm', 64)
    assert recurrence.resolve('auto', 'lstm', 64, jnp.bfloat16) == 'scan'


def _np_lstm_bf16(w_h, b, xp, h, c):
  """h_t of an LSTM whose recurrent matmul takes bfloat16-rounded h_{t-1} and W_h."""
  sig = lambda z: 1 / (1 + np.exp(-z))
  w = to_bf16(w_h)
  out = []
  for t in range(xp.shape[0]):
    z = xp[t] + b + to_bf16(h) @ w
    i, f, g, o = np.split(z, 4, axis=1)
    c = sig(f) * c + sig(i) * np.tanh(g)
    h = sig(o) * np.tanh(c)
    out.append(h)
  return np.stack(out)


@needs_amx
@pytest.mark.parametrize('t,b,h', [(1, 1, 32), (7, 37, 64), (4, 50, 96)])
def test_bf16_forward_against_numpy(t, b, h):
  rng = np.random.default_rng(0)
  w_h = rng.normal(size=(h, 4 * h)).astype(np.float32) / np.sqrt(h)
  bias = (rng.normal(size=(4 * h,)) * 0.5).astype(np.float32)
  xp = rng.normal(size=(t, b, 4 * h)).astype(np.float32)
  h0, c0 = (rng.normal(size=(b, h)).astype(np.float32) * 0.7 for _ in range(2))
  want = _np_lstm_bf16(w_h, bias, xp.astype(np.float64), h0, c0.astype(np.float64))
  got = np.asarray(kernels.lstm_recurrence_bf16(w_h, bias, xp, (h0, c0))[0])
  full = np.asarray(kernels.lstm_recurrence(w_h, bias, xp, (h0, c0))[0])
  err, err_f32 = np.max(np.abs(got - want)), np.max(np.abs(full - want))
  assert err < 2e-3, err
  # The rounding happened: the float32 kernel is further from this reference.
  assert err < err_f32 / 2, (err, err_f32)


@needs_amx
@pytest.mark.parametrize('t,b,h,g', [(5, 13, 64, 256), (2, 1, 32, 128)])
def test_bf16_weight_gradient_against_numpy(t, b, h, g):
  """dW = [h0; hs[:-1]]^T d with both operands rounded to bfloat16; d summed in float32.
  T*B rows that are not a multiple of 32 exercise the zero padding."""
  rng = np.random.default_rng(1)
  h0 = rng.normal(size=(b, h)).astype(np.float32)
  hs = rng.normal(size=(t, b, h)).astype(np.float32)
  d = rng.normal(size=(t, b, g)).astype(np.float32)
  dw, d_sum = kernels._weight_grad(h0, hs, d, bf16=True)
  a = np.concatenate([h0, hs[:-1].reshape(-1, h)])
  want = to_bf16(a).T @ to_bf16(d.reshape(-1, g))
  np.testing.assert_allclose(np.asarray(dw), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
  np.testing.assert_allclose(np.asarray(d_sum), d.astype(np.float64).reshape(-1, g).sum(0),
                             atol=1e-4)
  exact = a.astype(np.float64).T @ d.reshape(-1, g).astype(np.float64)
  assert np.abs(np.asarray(dw) - exact).max() > 1e-4  # Rounded, not float32.


@needs_amx
def test_bf16_gradients_stay_within_bfloat16_precision_of_float32():
  rng = np.random.default_rng(2)
  t, b, h = 20, 24, 64
  w_h = jnp.asarray(rng.normal(size=(h, 4 * h)) / np.sqrt(h), jnp.float32)
  bias = jnp.asarray(rng.normal(size=(4 * h,)) * 0.5, jnp.float32)
  xp = jnp.asarray(rng.normal(size=(t, b, 4 * h)), jnp.float32)
  carry = tuple(jnp.asarray(rng.normal(size=(b, h)) * 0.7, jnp.float32) for _ in range(2))
  grads = {}
  for name, fn in (('f32', kernels.lstm_recurrence), ('bf16', kernels.lstm_recurrence_bf16)):
    loss = lambda *a, fn=fn: jnp.sum(jnp.sin(fn(*a)[0]))
    grads[name] = jax.grad(loss, argnums=(0, 1, 2, 3))(w_h, bias, xp, carry)
  for a, c in zip(jax.tree.leaves(grads['f32']), jax.tree.leaves(grads['bf16'])):
    rel = float(jnp.max(jnp.abs(a - c)) / jnp.max(jnp.abs(a)))
    assert 1e-6 < rel < 2e-2, rel


@needs_amx
def test_bf16_model_on_the_kernels_matches_float32():
  rng = np.random.default_rng(3)
  v = 30
  tokens = jnp.asarray(rng.integers(0, v, (6, 40)), jnp.int32)
  targets = jnp.asarray(rng.integers(0, v, (6, 40)), jnp.int32)
  out = {}
  for rec, dtype in (('scan', 'float32'), ('kernel', 'bfloat16')):
    m = CharLM(v, cell='lstm', hidden_size=64, num_layers=2, recurrence=rec,
               compute_dtype=dtype, rngs=nnx.Rngs(0))

    def loss_fn(m):
      logits, _ = m(tokens, m.initial_carry(6))
      logp = jax.nn.log_softmax(logits)
      return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], -1))

    out[dtype] = nnx.value_and_grad(loss_fn)(m)
  (l32, g32), (l16, g16) = out['float32'], out['bfloat16']
  assert abs(float(l32) - float(l16)) < 2e-3
  for a, c in zip(jax.tree.leaves(nnx.state(g32)), jax.tree.leaves(nnx.state(g16))):
    assert float(jnp.max(jnp.abs(a - c))) <= 3e-2 * float(jnp.max(jnp.abs(a))) + 1e-7
