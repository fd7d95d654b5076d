"""Cells against independent NumPy float64 code, explicit loops and finite differences."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from np_reference import NP_STEPS
from rnnlm.model import cells



@pytest.fixture(autouse=True)
def _float64():
  with jax.enable_x64(True):
    yield




def random_params(cell, d, h, seed=0, dtype=np.float64):
  rng = np.random.default_rng(seed)
  g = cells.get_spec(cell).num_gates
  p = {'W_x': rng.normal(size=(d, g * h)) / np.sqrt(d),
       'W_h': rng.normal(size=(h, g * h)) / np.sqrt(h),
       'b': rng.normal(size=(g * h,)) * 0.5}
  if cell == 'gru':
    p['b_hn'] = rng.normal(size=(h,)) * 0.5
  return {k: v.astype(dtype) for k, v in p.items() if k in cells.get_spec(cell).params}


def random_carry(cell, b, h, seed=1, dtype=np.float64):
  rng = np.random.default_rng(seed)
  return tuple(rng.normal(size=(b, h)).astype(dtype) * 0.5
               for _ in range(cells.get_spec(cell).num_carry))


ALL = ['rnn', 'lstm', 'gru', 'mingru', 'minlstm']


@pytest.mark.parametrize('cell', ALL)
def test_step_matches_numpy_float64(cell):
  d, h, b = 5, 7, 3
  p = random_params(cell, d, h)
  carry = random_carry(cell, b, h)
  x = np.random.default_rng(2).normal(size=(b, d))
  want = NP_STEPS[cell](p, x, *carry)
  jp = {k: jnp.asarray(v) for k, v in p.items()}
  got, out = cells.step(cell, jp, tuple(map(jnp.asarray, carry)), jnp.asarray(x))
  for g, w in zip(got, want):
    np.testing.assert_allclose(np.asarray(g), w, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(np.asarray(out), want[0], rtol=1e-12, atol=1e-12)


def test_rnn_is_exactly_the_char_rnn_equation():
  # h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h), written out by hand for one unit.
  p = {'W_x': jnp.array([[0.5], [-1.0]]), 'W_h': jnp.array([[2.0]]), 'b': jnp.array([0.1])}
  (h,), _ = cells.step('rnn', p, (jnp.array([[0.25]]),), jnp.array([[1.0, 0.3]]))
  assert float(h[0, 0]) == pytest.approx(np.tanh(0.5 - 0.3 + 2.0 * 0.25 + 0.1), abs=1e-7)


@pytest.mark.parametrize('cell', ALL)
@pytest.mark.parametrize('zero_carry', [True, False])
def test_layer_equals_python_loop_and_reference(cell, zero_carry):
  t, b, d, h = 6, 3, 4, 5
  p = random_params(cell, d, h)
  carry = (tuple(np.zeros((b, h)) for _ in range(cells.get_spec(cell).num_carry))
           if zero_carry else random_carry(cell, b, h))
  xs = np.random.default_rng(3).normal(size=(t, b, d))
  # Explicit loop over time with the NumPy step.
  c, want = carry, []
  for x in xs:
    c = NP_STEPS[cell](p, x, *c)
    want.append(c[0])
  want = np.stack(want)
  jp = {k: jnp.asarray(v) for k, v in p.items()}
  jc = tuple(map(jnp.asarray, carry))
  parallel = lambda cell, p, xs, c: cells.recurrence_fast(cell, p, cells.project_inputs(p, xs), c)
  for fn in (cells.layer, cells.layer_reference, parallel):  # parallel: the minimal cells' scan.
    hs, final = jax.jit(fn, static_argnums=0)(cell, jp, jnp.asarray(xs), jc)
    np.testing.assert_allclose(np.asarray(hs), want, rtol=1e-10, atol=1e-12)
    for g, w in zip(final, c):
      np.testing.assert_allclose(np.asarray(g), w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('cell', ALL)
@pytest.mark.parametrize('path', ['layer', 'fast'])
def test_gradients_match_finite_differences(cell, path):
  t, b, d, h = 4, 2, 3, 4
  p = {k: jnp.asarray(v) for k, v in random_params(cell, d, h, seed=5).items()}
  carry = tuple(map(jnp.asarray, random_carry(cell, b, h, seed=6)))
  xs = jnp.asarray(np.random.default_rng(7).normal(size=(t, b, d)))
  proj = jnp.asarray(np.random.default_rng(8).normal(size=(t, b, h)))

  def loss(p, xs, carry):
    if path == 'layer':
      hs, final = cells.layer(cell, p, xs, carry)
    else:  # The custom VJP, or for the minimal cells the parallel scan.
      hs, final = cells.recurrence_fast(cell, p, cells.project_inputs(p, xs), carry)
    return jnp.sum(hs * proj) + sum(jnp.sum(c ** 2) for c in final)

  grads = jax.grad(loss, argnums=(0, 1, 2))(p, xs, carry)
  eps = 1e-6
  rng = np.random.default_rng(9)
  # Directional derivatives along random directions, for every argument.
  for arg_index in range(3):
    args = [p, xs, carry]
    direction = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), args[arg_index])
    plus = list(args)
    minus = list(args)
    plus[arg_index] = jax.tree.map(lambda a, v: a + eps * v, args[arg_index], direction)
    minus[arg_index] = jax.tree.map(lambda a, v: a - eps * v, args[arg_index], direction)
    fd = (loss(*plus) - loss(*minus)) / (2 * eps)
    analytic = sum(jnp.sum(g * v) for g, v in zip(jax.tree.leaves(grads[arg_index]),
                                                  jax.tree.leaves(direction)))
    np.testing.assert_allclose(float(analytic), float(fd), rtol=1e-6)


@pytest.mark.parametrize('cell', ALL)
@pytest.mark.parametrize('t,b,h', [(1, 1, 3), (7, 4, 16), (20, 2, 33)])
@pytest.mark.parametrize('zero_carry', [True, False])
def test_fast_path_matches_reference_float32(cell, t, b, h, zero_carry):
  with jax.enable_x64(False):
    d = 5
    p = {k: jnp.asarray(v, jnp.float32) for k, v in random_params(cell, d, h, seed=t).items()}
    carry = (tuple(jnp.zeros((b, h), jnp.float32) for _ in range(cells.get_spec(cell).num_carry))
             if zero_carry else
             tuple(jnp.asarray(c, jnp.float32) for c in random_carry(cell, b, h, seed=h)))
    xs = jnp.asarray(np.random.default_rng(b).normal(size=(t, b, d)), jnp.float32)
    proj = jnp.asarray(np.random.default_rng(4).normal(size=(t, b, h)), jnp.float32)

    def loss(run, p, xs, carry):
      hs, final = run(cell, p, cells.project_inputs(p, xs), carry)
      return jnp.sum(hs * proj) + sum(jnp.sum(jnp.sin(c)) for c in final), (hs, final)

    (l_ref, out_ref), g_ref = jax.value_and_grad(
        functools.partial(loss, cells.recurrence), argnums=(0, 1, 2), has_aux=True)(p, xs, carry)
    (l_fast, out_fast), g_fast = jax.jit(jax.value_and_grad(
        functools.partial(loss, cells.recurrence_fast), argnums=(0, 1, 2), has_aux=True))(p, xs, carry)
    for a, r in zip(jax.tree.leaves(out_fast), jax.tree.leaves(out_ref)):
      np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-6)
    for a, r in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref)):
      # Relative to the gradient's scale: float32 sums in a different order.
      np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(r))) + 1e-7)


@pytest.mark.parametrize('cell', ['mingru', 'minlstm', 'lru'])
def test_parallel_and_sequential_settings_agree_through_recurrence_layer(cell):
  from rnnlm.model import recurrence
  t, b, d, h = 12, 3, 4, 5
  key = jax.random.key(0)
  p = cells.init_params(key, cell, d, h, dtype=jnp.float64)
  carry = tuple(jnp.asarray(np.random.default_rng(1).normal(size=(b, h)) * 0.3)
                for _ in range(cells.get_spec(cell).num_carry))
  xs = jnp.asarray(np.random.default_rng(2).normal(size=(t, b, d)))
  proj = jnp.asarray(np.random.default_rng(3).normal(size=(t, b, h)))

  def run(impl):
    def loss(p, xs):
      hs, final = recurrence.layer(impl, cell, p, xs, carry)
      return jnp.sum(hs * proj) + sum(jnp.sum(c) for c in final), hs
    (l, hs), g = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(p, xs)
    return hs, g
  hs_par, g_par = run('parallel')
  hs_seq, g_seq = run('scan')
  np.testing.assert_allclose(np.asarray(hs_par), np.asarray(hs_seq), rtol=1e-10, atol=1e-12)
  for a, b_ in zip(jax.tree.leaves(g_par), jax.tree.leaves(g_seq)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b_), rtol=1e-8, atol=1e-10)


def test_auto_and_parallel_settings_by_cell_and_backend():
  from rnnlm.model import recurrence
  from rnnlm.errors import UserError
  # `auto` runs the linear cells sequentially on a CPU and in parallel on accelerators.
  want = 'scan' if jax.default_backend() == 'cpu' else 'parallel'
  for cell in cells.PARALLEL:
    assert recurrence.resolve('auto', cell, 64) == want
    assert recurrence.resolve('parallel', cell, 64) == 'parallel'
  with pytest.raises(UserError, match='model.recurrence=parallel runs'):
    recurrence.resolve('parallel', 'lstm', 64)
  # The removed cuDNN setting and unknown names: one line saying what to use.
  with pytest.raises(UserError, match='model.recurrence=cudnn is gone.*use model.recurrence=auto'):
    recurrence.resolve('cudnn', 'lstm', 64)
  with pytest.raises(UserError, match="unknown model.recurrence 'fast'; use one of auto,"):
    recurrence.resolve('fast', 'lstm', 64)
