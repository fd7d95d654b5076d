"""The recurrent paths on a GPU, against NumPy float64 loops and the autodiff scan.

Skipped without a GPU backend (CI has none). Run them on a GPU machine with
`JAX_PLATFORMS=cuda pytest -q -p no:xdist tests/model/test_gpu.py`; docs/performance.md
records the last such run.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from np_reference import NP_STEPS
from rnnlm.model import cells
from rnnlm.model import recurrence

pytestmark = pytest.mark.skipif(jax.default_backend() != 'gpu', reason='needs a GPU backend')


def _numpy_loop(cell, params, xp, carry):
  """hs [T, B, H] of the cell run step by step in float64 on projected inputs xp.

  NP_STEPS take the raw input and W_x; an identity W_x feeds xp through unchanged."""
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  p['W_x'] = np.eye(xp.shape[-1])
  state = tuple(np.asarray(c, np.float64) for c in carry)
  hs = []
  for x in np.asarray(xp, np.float64):
    state = NP_STEPS[cell](p, x, *state)
    hs.append(state[0])
  return np.stack(hs), state


def _problem(cell, t=13, b=5, d=6, h=16, dtype=jnp.float32):
  keys = jax.random.split(jax.random.key(3), 5)
  params = cells.init_params(keys[0], cell, d, h)
  params['b'] = 0.3 * jax.random.normal(keys[1], params['b'].shape)
  params = jax.tree.map(lambda a: a.astype(dtype), params)
  carry = tuple((0.4 * jax.random.normal(k, (b, h))).astype(dtype)
                for k in keys[2:2 + cells.get_spec(cell).num_carry])
  x = jax.random.normal(keys[4], (t, b, d), dtype)
  return params, carry, x


@pytest.mark.parametrize('cell', ['rnn', 'lstm', 'gru'])
def test_custom_vjp_scan_on_gpu_matches_numpy_and_autodiff(cell):
  with jax.enable_x64(True):
    params, carry, x = _problem(cell, dtype=jnp.float64)
    xp = x @ params['W_x']
    hs, _ = jax.jit(lambda p, c: cells.recurrence_fast(cell, p, xp, c))(params, carry)
    want, _ = _numpy_loop(cell, params, xp, carry)
    np.testing.assert_allclose(np.asarray(hs), want, rtol=1e-10, atol=1e-12)

    def loss(f):
      return lambda p, c: jnp.sum(jnp.sin(f(cell, p, xp, c)[0])) + jnp.sum(f(cell, p, xp, c)[1][0] ** 2)
    g_fast = jax.jit(jax.grad(loss(cells.recurrence_fast), argnums=(0, 1)))(params, carry)
    g_ref = jax.jit(jax.grad(loss(cells.recurrence), argnums=(0, 1)))(params, carry)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)


def _rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


@pytest.mark.parametrize('tokens', [False, True])
def test_cudnn_lstm_on_gpu_matches_numpy_and_scan(tokens):
  # cuDNN runs float32 only (its matmuls may round operands to TF32), hence the
  # relative tolerances; a wrong weight layout or gate order is off by O(1).
  params, carry, x = _problem('lstm')
  ids = jax.random.randint(jax.random.key(9), x.shape[:2], 0, x.shape[-1])
  xin = recurrence.Tokens(params['W_x'], ids) if tokens else x
  hs, (h_n, c_n) = jax.jit(lambda p, c: recurrence.layer('cudnn', 'lstm', p, xin, c))(
      params, carry)
  xp = params['W_x'][ids] if tokens else x @ params['W_x']
  want_hs, (want_h, want_c) = _numpy_loop('lstm', params, np.asarray(xp, np.float64), carry)
  assert _rel_err(hs, want_hs) < 5e-3
  assert _rel_err(h_n, want_h) < 5e-3 and _rel_err(c_n, want_c) < 5e-3

  def loss(impl):
    def f(p, c):
      inp = recurrence.Tokens(p['W_x'], ids) if tokens else x
      out, (_, c_last) = recurrence.layer(impl, 'lstm', p, inp, c)
      return jnp.sum(jnp.sin(out)) + jnp.sum(c_last ** 2)
    return f
  with jax.default_matmul_precision('highest'):
    g_scan = jax.jit(jax.grad(loss('scan'), argnums=(0, 1)))(params, carry)
  g_cudnn = jax.jit(jax.grad(loss('cudnn'), argnums=(0, 1)))(params, carry)
  for a, b in zip(jax.tree.leaves(g_cudnn), jax.tree.leaves(g_scan)):
    assert _rel_err(a, b) < 1e-2


def test_model_runs_cudnn_and_scan_alike_on_gpu():
  from flax import nnx
  from rnnlm.model import CharLM
  tokens = jax.random.randint(jax.random.key(1), (4, 20), 0, 30)
  logits = {}
  for impl in ('scan', 'cudnn'):
    model = CharLM(30, cell='lstm', hidden_size=32, num_layers=2, embed_dim=16,
                   recurrence=impl, rngs=nnx.Rngs(0))
    with jax.default_matmul_precision('highest'):
      logits[impl], _ = model(tokens, model.initial_carry(4))
  assert _rel_err(logits['cudnn'], logits['scan']) < 5e-3
