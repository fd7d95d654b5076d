"""The LRU cell (Orvieto et al. 2023) against NumPy complex128 step by step, finite
differences, and through the model: windows, sampling and training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from np_reference import np_lru
from rnnlm.model import cells
from rnnlm.model import CharLM


def _params(d, h, seed=0):
  p = cells.init_params(jax.random.key(seed), 'lru', d, h, dtype=jnp.float64)
  rng = np.random.default_rng(seed)
  p['b'] = jnp.asarray(rng.normal(size=p['b'].shape) * 0.3)  # Not zero, so it is tested.
  return p


def _numpy_loop(p, xs, carry):
  p = {k: np.asarray(v, np.float64) for k, v in p.items()}
  c, ys = tuple(np.asarray(a, np.float64) for a in carry), []
  for x in xs:
    c, y = np_lru(p, x, *c)
    ys.append(y)
  return np.stack(ys), c


@pytest.mark.parametrize('zero_carry', [True, False])
def test_parallel_scan_and_steps_match_numpy_complex128(zero_carry):
  t, b, d, h = 9, 3, 4, 6
  with jax.enable_x64(True):
    p = _params(d, h)
    rng = np.random.default_rng(1)
    carry = (tuple(jnp.zeros((b, h), jnp.float64) for _ in range(2)) if zero_carry else
             tuple(jnp.asarray(rng.normal(size=(b, h)) * 0.5) for _ in range(2)))
    xs = jnp.asarray(rng.normal(size=(t, b, d)))
    want_h, want_c = _numpy_loop(p, np.asarray(xs), carry)
    parallel = cells.recurrence_fast('lru', p, cells.project_inputs(p, xs), carry)
    stepwise = cells.layer_reference('lru', p, xs, carry)
    for hs, final in (parallel, stepwise):
      np.testing.assert_allclose(np.asarray(hs), want_h, rtol=1e-10, atol=1e-12)
      for g, w in zip(final, want_c):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-10, atol=1e-12)


def test_gradients_of_the_parallel_scan_match_finite_differences():
  t, b, d, h = 5, 2, 3, 4
  with jax.enable_x64(True):
    p = _params(d, h, seed=3)
    rng = np.random.default_rng(4)
    carry = tuple(jnp.asarray(rng.normal(size=(b, h)) * 0.5) for _ in range(2))
    xs = jnp.asarray(rng.normal(size=(t, b, d)))
    proj = jnp.asarray(rng.normal(size=(t, b, h)))

    def loss(p, xs, carry):
      hs, final = cells.recurrence_fast('lru', p, cells.project_inputs(p, xs), carry)
      return jnp.sum(hs * proj) + sum(jnp.sum(c ** 2) for c in final)

    grads = jax.grad(loss, argnums=(0, 1, 2))(p, xs, carry)
    eps = 1e-6
    for i, arg in enumerate((p, xs, carry)):
      direction = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), arg)
      shifted = lambda sign: [a if j != i else jax.tree.map(lambda x, v: x + sign * eps * v,
                                                           arg, direction)
                              for j, a in enumerate((p, xs, carry))]
      fd = (loss(*shifted(1)) - loss(*shifted(-1))) / (2 * eps)
      analytic = sum(jnp.sum(g * v) for g, v in zip(jax.tree.leaves(grads[i]),
                                                    jax.tree.leaves(direction)))
      np.testing.assert_allclose(float(analytic), float(fd), rtol=1e-6)


def test_initial_eigenvalues_lie_on_the_ring_and_gamma_normalises():
  p = cells.init_params(jax.random.key(0), 'lru', 8, 512)
  lam_re, lam_im, gamma = (np.asarray(a, np.float64) for a in cells.lru_lambda(p))
  modulus = np.hypot(lam_re, lam_im)
  assert modulus.min() >= cells.LRU_R_MIN - 1e-5 and modulus.max() <= cells.LRU_R_MAX + 1e-5
  np.testing.assert_allclose(gamma, np.sqrt(1 - modulus ** 2), rtol=1e-4)
  phase = np.exp(np.asarray(p['theta_log'], np.float64))
  assert phase.min() >= 0 and phase.max() <= cells.LRU_MAX_PHASE + 1e-5


@pytest.mark.slow
def test_model_windows_carry_and_sampling_steps_agree():
  model = CharLM(11, cell='lru', hidden_size=16, num_layers=2, rngs=nnx.Rngs(0))
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 11, (2, 24)), jnp.int32)
  whole, carry_whole = model(tokens, model.initial_carry(2))
  carry, parts = model.initial_carry(2), []
  for lo in range(0, 24, 8):  # Three windows, state carried.
    logits, carry = model(tokens[:, lo:lo + 8], carry)
    parts.append(logits)
  np.testing.assert_allclose(np.concatenate(parts, 1), whole, rtol=1e-5, atol=1e-5)
  carry, steps = model.initial_carry(2), []
  for i in range(24):  # One character at a time, as sampling runs.
    logits, carry = model.step(tokens[:, i], carry)
    steps.append(logits)
  np.testing.assert_allclose(np.stack(steps, 1), whole, rtol=1e-4, atol=1e-5)
  for a, b in zip(jax.tree.leaves(carry), jax.tree.leaves(carry_whole)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
