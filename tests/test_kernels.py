"""The compiled CPU LSTM kernel against NumPy float64 and float64 autodiff."""

import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from np_reference import np_lstm
from rnnlm import cells, kernels
from rnnlm.model import CharLM

needs_kernel = pytest.mark.skipif(not kernels.available(),
                                  reason=f'CPU kernels unavailable: {kernels.unavailable_reason()}')


def test_kernel_builds_where_a_compiler_exists():
  if not (os.environ.get('CXX') or shutil.which('c++') or shutil.which('g++')):
    pytest.skip('no C++ compiler on this machine')
  assert kernels.unavailable_reason() is None
  assert kernels.lstm_supported(32, jnp.float32)
  assert not kernels.lstm_supported(33, jnp.float32)  # Not a multiple of 16.
  assert not kernels.lstm_supported(32, jnp.bfloat16)


def _inputs(t, b, h, zero_carry, seed=0):
  rng = np.random.default_rng(seed)
  w_h = rng.normal(size=(h, 4 * h)) / np.sqrt(h)
  bias = rng.normal(size=(4 * h,)) * 0.5
  xp = rng.normal(size=(t, b, 4 * h))
  if zero_carry:
    carry = (np.zeros((b, h)), np.zeros((b, h)))
  else:
    carry = (rng.normal(size=(b, h)) * 0.5, rng.normal(size=(b, h)))
  return w_h, bias, xp, carry


# Shapes: one step; a batch that does not split evenly over threads or row tiles;
# column counts that leave 1..3-vector remainders (4H = 320, H = 80); the
# benchmark's shape.
SHAPES = [(1, 1, 16), (5, 3, 16), (9, 13, 48), (3, 7, 80), (4, 50, 128)]


@needs_kernel
@pytest.mark.parametrize('t,b,h', SHAPES)
@pytest.mark.parametrize('zero_carry', [True, False])
def test_forward_matches_numpy_float64(t, b, h, zero_carry):
  w_h, bias, xp, (h0, c0) = _inputs(t, b, h, zero_carry)
  # The NumPy step takes x W_x; with W_x = I (4H wide input) that is xp itself.
  p = {'W_x': np.eye(4 * h), 'W_h': w_h, 'b': bias}
  hc, want = (h0, c0), []
  for x in xp:
    hc = np_lstm(p, x, *hc)
    want.append(hc[0])
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  hs, (h_last, c_last) = jax.jit(kernels.lstm_recurrence)(
      f32(w_h), f32(bias), f32(xp), (f32(h0), f32(c0)))
  np.testing.assert_allclose(hs, np.stack(want), rtol=1e-5, atol=2e-6)
  np.testing.assert_allclose(h_last, hc[0], rtol=1e-5, atol=2e-6)
  np.testing.assert_allclose(c_last, hc[1], rtol=1e-5, atol=2e-6)


@needs_kernel
@pytest.mark.parametrize('t,b,h', SHAPES)
@pytest.mark.parametrize('zero_carry', [True, False])
def test_gradients_match_float64_autodiff(t, b, h, zero_carry):
  w_h, bias, xp, carry = _inputs(t, b, h, zero_carry, seed=1)
  rng = np.random.default_rng(2)
  proj = rng.normal(size=(t, b, h))
  proj_c = rng.normal(size=(b, h))

  def loss(run, w_h, bias, xp, carry):
    hs, (h_last, c_last) = run(w_h, bias, xp, carry)
    return jnp.sum(hs * proj) + jnp.sum(jnp.sin(h_last)) + jnp.sum(c_last * proj_c)

  reference = lambda w, bb, x, c: cells.recurrence('lstm', {'W_h': w, 'b': bb}, x, c)
  with jax.enable_x64(True):
    want = jax.grad(lambda *a: loss(reference, *a), argnums=(0, 1, 2, 3))(
        w_h, bias, xp, carry)
    want = jax.tree.map(np.asarray, want)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  got = jax.jit(jax.grad(lambda *a: loss(kernels.lstm_recurrence, *a), argnums=(0, 1, 2, 3)))(
      f32(w_h), f32(bias), f32(xp), jax.tree.map(f32, carry))
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert g.dtype == jnp.float32
    # Relative to the gradient's scale: float32 sums in another order.
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * np.max(np.abs(w)))


@needs_kernel
def test_result_does_not_depend_on_thread_count(monkeypatch):
  w_h, bias, xp, carry = _inputs(6, 25, 32, zero_carry=False, seed=3)
  args = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), (w_h, bias, xp, carry))
  grad = jax.grad(lambda *a: jnp.sum(kernels.lstm_recurrence(*a)[0] ** 2), argnums=(0, 2, 3))
  outs = []
  for threads in ('1', '3'):
    monkeypatch.setenv('RNNLM_KERNEL_THREADS', threads)
    outs.append(jax.tree.map(np.asarray, (kernels.lstm_recurrence(*args), grad(*args))))
  for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
    np.testing.assert_array_equal(a, b)


@needs_kernel
def test_model_uses_kernel_and_matches_scan_path():
  tokens = jnp.asarray(np.random.default_rng(4).integers(0, 20, (6, 9)))
  outs = []
  for kernel in (True, False):
    model = CharLM(20, cell='lstm', hidden_size=32, num_layers=2, rngs=nnx.Rngs(0),
                   cpu_kernel=kernel)
    carry = jax.tree.map(lambda a: a + 0.2, model.initial_carry(6))
    hlo = jax.jit(lambda t, c: model(t, c)).lower(tokens, carry).as_text()
    assert ('rnnlm_lstm_forward' in hlo) == kernel
    outs.append(model(tokens, carry))
  for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_disabled_by_environment_falls_back_with_reason():
  code = ('from rnnlm import kernels; import jax.numpy as jnp;'
          'print(kernels.unavailable_reason()); print(kernels.lstm_supported(32, jnp.float32))')
  env = dict(os.environ, RNNLM_KERNELS='0', JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                       check=True).stdout.split()
  assert out == ['RNNLM_KERNELS=0', 'False']


def test_embedding_is_folded_into_first_projection_exactly():
  v, e, h = 9, 5, 16
  model = CharLM(v, cell='gru', hidden_size=h, num_layers=1, embed_dim=e, rngs=nnx.Rngs(2))
  tokens = jnp.asarray(np.random.default_rng(5).integers(0, v, (3, 4)))  # 12 >= V: folded.
  logits, _ = model(tokens, model.initial_carry(3))
  # Unfolded by hand: embed, project, recur, head.
  w = model.layers[0].weights()
  xp = cells.project_inputs(w, model.embed(tokens.T))
  hs, _ = cells.recurrence('gru', w, xp, model.initial_carry(3)[0])
  want = jnp.swapaxes(model.head(hs), 0, 1)
  np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-6)
