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


@pytest.mark.parametrize('cell', ['rnn', 'lstm', 'gru'])
def test_model_on_gpu_picks_the_scan_and_matches_the_reference(cell):
  from flax import nnx
  from rnnlm.model import CharLM
  assert recurrence.resolve('auto', cell, 32) == 'scan'
  tokens = jax.random.randint(jax.random.key(1), (4, 21), 0, 30)
  out = {}
  with jax.default_matmul_precision('highest'):
    for impl in ('auto', 'reference'):
      model = CharLM(30, cell=cell, hidden_size=32, num_layers=2, embed_dim=16,
                     recurrence=impl, rngs=nnx.Rngs(0))
      graphdef, params = nnx.split(model)

      def loss(params):
        logits, _ = nnx.merge(graphdef, params)(tokens[:, :-1], model.initial_carry(4))
        return jnp.mean(jax.nn.logsumexp(logits, -1)
                        - jnp.take_along_axis(logits, tokens[:, 1:, None], -1)[..., 0])
      out[impl] = jax.jit(jax.value_and_grad(loss))(params)
  (l_a, g_a), (l_r, g_r) = out['auto'], out['reference']
  np.testing.assert_allclose(float(l_a), float(l_r), rtol=1e-5)
  for a, b in zip(jax.tree.leaves(g_a), jax.tree.leaves(g_r)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-6)
