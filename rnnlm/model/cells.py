"""Recurrence math as pure JAX functions over explicit arrays.

Every cell is written as two parts:

  * the input projection `x_t @ W_x`, which does not depend on the carry and so
    can be computed for all time steps in one large matmul before the scan;
  * the recurrent step `(carry, xproj_t) -> (carry, h_t)`, which holds the only
    truly sequential work: `h_{t-1} @ W_h`, the bias and the gate nonlinearities.

`layer_reference` runs the textbook form (projection inside the step, autodiff
through `lax.scan`) and is what tests and the fast paths are compared against.
`recurrence` is autodiff of the plain scan over projected inputs, and
`recurrence_fast` the same values with a hand-written VJP (faster). Which one a
model runs, and the compiled CPU kernels besides, is chosen in
`rnnlm.model.recurrence`; this module imports no other implementation.

Shapes: time-major. `xs` is [time, batch, in_dim]; a carry is a tuple of
[batch, hidden] arrays: `(h,)` for rnn and gru, `(h, c)` for lstm.

Parameters of one layer (dict):
  rnn:  W_x [D, H], W_h [H, H], b [H]
        h_t = tanh(x_t W_x + h_{t-1} W_h + b)
  lstm: W_x [D, 4H], W_h [H, 4H], b [4H], gates in the order i, f, g, o
        i, f, o = sigmoid(.), g = tanh(.), c_t = f c_{t-1} + i g, h_t = o tanh(c_t)
  gru:  W_x [D, 3H], W_h [H, 3H], b [3H], b_hn [H], gates in the order r, z, n
        r, z = sigmoid(x W_x + h W_h + b) on their slices,
        n = tanh(x W_xn + b_n + r * (h W_hn + b_hn)),  h_t = (1 - z) n + z h_{t-1}
        (the PyTorch / cuDNN form, with the reset gate applied after W_hn).
  mingru:  W_x [D, 2H], b [2H], blocks z, h~ (Feng et al. 2024, "Were RNNs all we
        needed?"): gates see only the input, so h_t = a_t h_{t-1} + b_t is linear in
        h_{t-1}; z = sigmoid(.), h_t = (1 - z) h_{t-1} + z g(h~),
        g(x) = x + 1/2 for x >= 0, sigmoid(x) below (`positive`; keeps h positive).
  minlstm: W_x [D, 3H], b [3H], blocks f, i, h~:
        f' = f / (f + i), i' = i / (f + i), h_t = f' h_{t-1} + i' g(h~).
  The two minimal cells have no W_h: over a window they can run as a parallel scan
  (`parallel_recurrence`, log space; `model.recurrence=parallel`), else step by step.
  lru: W_x [D, 3H], b [3H], blocks u_re, u_im, skip; nu_log, theta_log, gamma_log [H];
        W_c [2H, H] (the Linear Recurrent Unit of Orvieto et al. 2023): a complex
        diagonal recurrence s_t = lambda * s_{t-1} + gamma * u_t with
        lambda = exp(-exp(nu_log) + i exp(theta_log)), gamma = exp(gamma_log), and the
        output h_t = gelu([Re s_t, Im s_t] W_c + skip_t), the position-wise
        nonlinearity of the paper's blocks (no norm or residual: layers stack as the
        other cells do). The carry is (Re s, Im s); over a window it can run as
        a parallel scan of complex products (`lru_parallel`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp

Carry = tuple[jax.Array, ...]
Params = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class CellSpec:
  """The facts of one cell that the cells, the kernels, the FLOP counts and the
  tests all read: defined here once."""
  name: str
  gates: tuple[str, ...]  # Column blocks of W_x, W_h and b, in order, each H wide.
  carry: tuple[str, ...]  # The [batch, hidden] arrays of the carry, in order.
  params: tuple[str, ...]  # Parameter names of one layer.

  @property
  def num_gates(self) -> int:
    """Width of the input projection, in units of hidden_size."""
    return len(self.gates)

  @property
  def num_carry(self) -> int:
    return len(self.carry)


CELLS = {
    # The Elman RNN's one block is the tanh pre-activation of h.
    'rnn': CellSpec('rnn', gates=('h',), carry=('h',), params=('W_x', 'W_h', 'b')),
    'lstm': CellSpec('lstm', gates=('i', 'f', 'g', 'o'), carry=('h', 'c'),
                     params=('W_x', 'W_h', 'b')),
    'gru': CellSpec('gru', gates=('r', 'z', 'n'), carry=('h',),
                    params=('W_x', 'W_h', 'b', 'b_hn')),
    'mingru': CellSpec('mingru', gates=('z', 'h~'), carry=('h',), params=('W_x', 'b')),
    'minlstm': CellSpec('minlstm', gates=('f', 'i', 'h~'), carry=('h',), params=('W_x', 'b')),
    'lru': CellSpec('lru', gates=('u_re', 'u_im', 'skip'), carry=('s_re', 's_im'),
                    params=('W_x', 'b', 'nu_log', 'theta_log', 'gamma_log', 'W_c')),
}

# Cells whose gates read only the input: linear in the carry, parallel over time.
MINIMAL = ('mingru', 'minlstm')
# Cells whose state is linear in the previous state: a parallel scan over a window.
PARALLEL = MINIMAL + ('lru',)
# The LRU's eigenvalues start uniform on the ring r_min <= |lambda| <= r_max with
# phases in [0, LRU_MAX_PHASE], as Orvieto et al. (2023) initialise them; the ring
# and the phase range here are not tuned.
LRU_R_MIN, LRU_R_MAX, LRU_MAX_PHASE = 0.5, 0.99, 3.141592653589793


def get_spec(cell: str) -> CellSpec:
  if cell not in CELLS:
    raise ValueError(f'unknown cell {cell!r}; choose one of {sorted(CELLS)}')
  return CELLS[cell]


def init_params(key: jax.Array, cell: str, in_dim: int, hidden: int,
                dtype=jnp.float32, one_hot_input: bool = False) -> Params:
  """Initial parameters of one layer.

  W_x: scaled normal with variance 1/fan_in, where the fan-in of a one-hot input
  is 1 (a single active unit), so each row is a unit-variance character
  embedding into the gates; W_h: orthogonal per gate block, which
  keeps the recurrence norm-preserving at the start; biases zero except the LSTM
  forget gate (1.0), which lets memory flow from the first step.
  """
  spec = get_spec(cell)
  g = spec.num_gates
  kx, kh = jax.random.split(key)
  fan_in = 1 if one_hot_input else in_dim
  w_x = jax.random.normal(kx, (in_dim, g * hidden), dtype) / jnp.sqrt(fan_in).astype(dtype)
  orth = jax.nn.initializers.orthogonal()
  w_h = jnp.concatenate([orth(k, (hidden, hidden), dtype)
                         for k in jax.random.split(kh, g)], axis=1)
  b = jnp.zeros((g * hidden,), dtype)
  if cell == 'lstm':
    b = b.at[hidden:2 * hidden].set(1.0)
  params = {'W_x': w_x, 'W_h': w_h, 'b': b}
  if cell == 'lru':
    return _lru_init(key, in_dim, hidden, dtype, fan_in)
  if cell in MINIMAL:
    del params['W_h']
  if cell == 'gru':
    params['b_hn'] = jnp.zeros((hidden,), dtype)
  return params


def _lru_init(key, in_dim: int, hidden: int, dtype, fan_in: int) -> Params:
  k_u1, k_u2, k_b, k_skip, k_c = jax.random.split(key, 5)
  u1 = jax.random.uniform(k_u1, (hidden,))
  u2 = jax.random.uniform(k_u2, (hidden,))
  # |lambda|^2 uniform on [r_min^2, r_max^2]; nu = -log|lambda|.
  nu = -0.5 * jnp.log(u1 * (LRU_R_MAX ** 2 - LRU_R_MIN ** 2) + LRU_R_MIN ** 2)
  modulus = jnp.exp(-nu)
  # B is complex with variance 1/fan_in split over its two parts.
  w_b = jax.random.normal(k_b, (in_dim, 2 * hidden)) / jnp.sqrt(2.0 * fan_in)
  w_skip = jax.random.normal(k_skip, (in_dim, hidden)) / jnp.sqrt(float(fan_in))
  params = {'W_x': jnp.concatenate([w_b, w_skip], axis=1),
            'b': jnp.zeros((3 * hidden,)),
            'nu_log': jnp.log(nu),
            'theta_log': jnp.log(LRU_MAX_PHASE * u2 + 1e-6),
            # gamma normalises the state's variance: sqrt(1 - |lambda|^2).
            'gamma_log': 0.5 * jnp.log1p(-modulus ** 2),
            'W_c': jax.random.normal(k_c, (2 * hidden, hidden)) / jnp.sqrt(2.0 * hidden)}
  return {k: v.astype(dtype) for k, v in params.items()}


def zero_carry(cell: str, batch: int, hidden: int, dtype=jnp.float32) -> Carry:
  return tuple(jnp.zeros((batch, hidden), dtype)
               for _ in range(get_spec(cell).num_carry))


# ----------------------------------------------------------------------------
# The recurrent step, given the input projection xp_t = x_t W_x + b.


def _rnn_step(params, carry, xp):
  (h,) = carry
  h = jnp.tanh(xp + h @ params['W_h'])
  return (h,), h


def _lstm_step(params, carry, xp):
  h, c = carry
  z = xp + h @ params['W_h']
  i, f, g, o = jnp.split(z, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  h = jax.nn.sigmoid(o) * jnp.tanh(c)
  return (h, c), h


def _gru_step(params, carry, xp):
  (h,) = carry
  hidden = h.shape[-1]
  hh = h @ params['W_h']
  r = jax.nn.sigmoid(xp[..., :hidden] + hh[..., :hidden])
  z = jax.nn.sigmoid(xp[..., hidden:2 * hidden] + hh[..., hidden:2 * hidden])
  n = jnp.tanh(xp[..., 2 * hidden:] + r * (hh[..., 2 * hidden:] + params['b_hn']))
  h = (1.0 - z) * n + z * h
  return (h,), h


def positive(x: jax.Array) -> jax.Array:
  """The minimal cells' candidate map: x + 1/2 for x >= 0, sigmoid(x) below (> 0)."""
  return jnp.where(x >= 0, x + 0.5, jax.nn.sigmoid(x))


def log_positive(x: jax.Array) -> jax.Array:
  """log(positive(x)), computed without forming positive(x)."""
  return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-x))


def _mingru_step(params, carry, xp):
  (h,) = carry
  k, cand = jnp.split(xp, 2, axis=-1)
  z = jax.nn.sigmoid(k)
  h = (1.0 - z) * h + z * positive(cand)
  return (h,), h


def _minlstm_step(params, carry, xp):
  (h,) = carry
  kf, ki, cand = jnp.split(xp, 3, axis=-1)
  f, i = jax.nn.sigmoid(kf), jax.nn.sigmoid(ki)
  h = (f * h + i * positive(cand)) / (f + i)
  return (h,), h


def lru_lambda(params: Params) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(Re lambda, Im lambda, gamma) of an LRU layer, each [H], in float32 or wider."""
  f = lambda name: params[name].astype(jnp.promote_types(params[name].dtype, jnp.float32))
  modulus, phase = jnp.exp(-jnp.exp(f('nu_log'))), jnp.exp(f('theta_log'))
  return modulus * jnp.cos(phase), modulus * jnp.sin(phase), jnp.exp(f('gamma_log'))


def _lru_output(params, s_re, s_im, skip):
  w_c = params['W_c']
  y = jnp.concatenate([s_re, s_im], axis=-1).astype(w_c.dtype) @ w_c + skip
  return jax.nn.gelu(y, approximate=False)


def _lru_step(params, carry, xp):
  s_re, s_im = carry
  u_re, u_im, skip = jnp.split(xp, 3, axis=-1)
  lam_re, lam_im, gamma = lru_lambda(params)
  new_re = lam_re * s_re - lam_im * s_im + gamma * u_re
  new_im = lam_re * s_im + lam_im * s_re + gamma * u_im
  new_re, new_im = new_re.astype(s_re.dtype), new_im.astype(s_im.dtype)
  return (new_re, new_im), _lru_output(params, new_re, new_im, skip)


_STEPS: dict[str, Callable] = {'rnn': _rnn_step, 'lstm': _lstm_step, 'gru': _gru_step,
                               'mingru': _mingru_step, 'minlstm': _minlstm_step,
                               'lru': _lru_step}


def step(cell: str, params: Params, carry: Carry, x: jax.Array) -> tuple[Carry, jax.Array]:
  """One time step from an input x [batch, in_dim]: returns (carry, h [batch, H])."""
  return _STEPS[cell](params, carry, x @ params['W_x'] + params['b'])


def step_activations(cell: str, params: Params, carry: Carry, xp: jax.Array
                     ) -> tuple[Carry, dict[str, jax.Array]]:
  """One step of the plain recurrence from xp = x W_x (no bias), returning the new
  carry and every named activation of the step, each [batch, H]: the gates of
  `CellSpec.gates` after their nonlinearity, then the carry ('h'; 'c' for lstm).
  The same math as `step`, for looking inside a model."""
  z = xp + params['b']
  hidden = carry[0].shape[-1]
  block = lambda a, k: a[..., k * hidden:(k + 1) * hidden]
  if cell == 'lru':  # 'h' is the layer's output; the state is (s_re, s_im).
    (s_re, s_im), h = _lru_step(params, carry, z)
    return (s_re, s_im), {'s_re': s_re, 's_im': s_im, 'h': h}
  if cell == 'lstm':
    h, c = carry
    z = z + h @ params['W_h']
    i, f, g, o = (jax.nn.sigmoid(block(z, 0)), jax.nn.sigmoid(block(z, 1)),
                  jnp.tanh(block(z, 2)), jax.nn.sigmoid(block(z, 3)))
    c = f * c + i * g
    h = o * jnp.tanh(c)
    return (h, c), {'i': i, 'f': f, 'g': g, 'o': o, 'h': h, 'c': c}
  if cell == 'mingru':
    (h,) = carry
    z, cand = jax.nn.sigmoid(block(z, 0)), positive(block(z, 1))
    h = (1.0 - z) * h + z * cand
    return (h,), {'z': z, 'h~': cand, 'h': h}
  if cell == 'minlstm':
    (h,) = carry
    f, i, cand = (jax.nn.sigmoid(block(z, 0)), jax.nn.sigmoid(block(z, 1)),
                  positive(block(z, 2)))
    h = (f * h + i * cand) / (f + i)
    return (h,), {'f': f / (f + i), 'i': i / (f + i), 'h~': cand, 'h': h}
  if cell == 'gru':
    (h,) = carry
    hh = h @ params['W_h']
    r = jax.nn.sigmoid(block(z, 0) + block(hh, 0))
    u = jax.nn.sigmoid(block(z, 1) + block(hh, 1))
    n = jnp.tanh(block(z, 2) + r * (block(hh, 2) + params['b_hn']))
    h = (1.0 - u) * n + u * h
    return (h,), {'r': r, 'z': u, 'n': n, 'h': h}
  (h,) = carry
  h = jnp.tanh(z + h @ params['W_h'])
  return (h,), {'h': h}


def project_inputs(params: Params, xs: jax.Array) -> jax.Array:
  """x_t W_x for all steps in one matmul: [T, B, D] -> [T, B, G*H].

  The bias is added inside the recurrence, where it fuses with the step's other
  elementwise work instead of costing a pass over [T, B, G*H].
  """
  return matmul(xs, params['W_x'])


def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [..., D] @ w [D, N], as one 2-D matmul."""
  t = x.shape[:-1]
  return (x.reshape(-1, x.shape[-1]) @ w).reshape(*t, w.shape[1])


def project_tokens(params: Params, tokens: jax.Array) -> jax.Array:
  """The same for one-hot inputs: a row gather of W_x. tokens [T, B] -> [T, B, G*H].

  Token ids are in range by construction (`rnnlm.data`); mode="clip" spares the
  out-of-range masking of the default mode, which costs a pass over the output.
  """
  return jnp.take(params['W_x'], tokens, axis=0, mode='clip')


# ----------------------------------------------------------------------------
# Whole layers over a sequence.


def layer_reference(cell: str, params: Params, xs: jax.Array, carry: Carry
                    ) -> tuple[jax.Array, Carry]:
  """The plain path: `lax.scan` of `step` (projection inside), autodiff backward.

  Args:
    xs: [T, B, D] inputs.
    carry: the initial carry.

  Returns:
    (hs [T, B, H], final carry).
  """
  def body(carry, x):
    return step(cell, params, carry, x)
  carry, hs = jax.lax.scan(body, carry, xs)
  return hs, carry


def recurrence(cell: str, params: Params, xp: jax.Array, carry: Carry,
               unroll: int = 1) -> tuple[jax.Array, Carry]:
  """Runs the recurrent part over input projections xp = x W_x [T, B, G*H] (no bias)."""
  def step_fn(carry, xp_t):
    return _STEPS[cell](params, carry, xp_t + params['b'])
  carry, hs = jax.lax.scan(step_fn, carry, xp, unroll=unroll)
  return hs, carry


def layer(cell: str, params: Params, xs: jax.Array, carry: Carry,
          unroll: int = 1) -> tuple[jax.Array, Carry]:
  """The fast path: inputs of all steps projected in one matmul, then the scan."""
  return recurrence(cell, params, project_inputs(params, xs), carry, unroll)


# ----------------------------------------------------------------------------
# The fast path: a custom VJP for the recurrence.
#
# Autodiff of `lax.scan` accumulates dW_h inside the backward loop: one small
# [H, B] x [B, G*H] matmul per step on top of the [B, G*H] x [G*H, H] one that
# carries the gradient back in time. Here the forward scan saves the gate
# activations, the backward scan does only the sequential part (pre-activation
# gradients and the carry gradient), and dW_h is one large matmul over all steps
# afterwards. Elementwise work per step is written so that XLA fuses it.


def _fwd_scan(cell, w_h, b, b_hn, xp, carry, unroll):
  """Forward recurrence that also returns what the backward pass needs."""
  hidden = carry[0].shape[-1]

  if cell == 'rnn':
    def body(carry, xp_t):
      (h,) = carry
      h = jnp.tanh(xp_t + b + h @ w_h)
      return (h,), h
    carry, hs = jax.lax.scan(body, carry, xp, unroll=unroll)
    return hs, carry, ()
  if cell == 'lstm':
    def body(carry, xp_t):
      h, c = carry
      z = xp_t + b + h @ w_h
      i = jax.nn.sigmoid(z[:, :hidden])
      f = jax.nn.sigmoid(z[:, hidden:2 * hidden])
      g = jnp.tanh(z[:, 2 * hidden:3 * hidden])
      o = jax.nn.sigmoid(z[:, 3 * hidden:])
      c = f * c + i * g
      h = o * jnp.tanh(c)
      return (h, c), (h, jnp.concatenate([i, f, g, o], axis=-1), c)
    carry, (hs, gates, cs) = jax.lax.scan(body, carry, xp, unroll=unroll)
    return hs, carry, (gates, cs)
  if cell == 'gru':
    def body(carry, xp_t):
      (h,) = carry
      hh = h @ w_h
      xp_t = xp_t + b
      r = jax.nn.sigmoid(xp_t[:, :hidden] + hh[:, :hidden])
      z = jax.nn.sigmoid(xp_t[:, hidden:2 * hidden] + hh[:, hidden:2 * hidden])
      hn = hh[:, 2 * hidden:] + b_hn
      n = jnp.tanh(xp_t[:, 2 * hidden:] + r * hn)
      h = (1.0 - z) * n + z * h
      return (h,), (h, jnp.concatenate([r, z, n, hn], axis=-1))
    carry, (hs, acts) = jax.lax.scan(body, carry, xp, unroll=unroll)
    return hs, carry, (acts,)
  raise ValueError(cell)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 6))
def _recurrence_fast(cell, w_h, b, b_hn, xp, carry, unroll):
  hs, carry, _ = _fwd_scan(cell, w_h, b, b_hn, xp, carry, unroll)
  return hs, carry


def _recurrence_fast_fwd(cell, w_h, b, b_hn, xp, carry, unroll):
  hs, final, saved = _fwd_scan(cell, w_h, b, b_hn, xp, carry, unroll)
  return (hs, final), (w_h, b_hn, hs, carry, saved)


def _recurrence_fast_bwd(cell, unroll, residuals, cotangents):
  w_h, b_hn, hs, carry0, saved = residuals
  d_hs, d_final = cotangents
  hidden = hs.shape[-1]
  # h_{t-1} for every t: the initial h, then all but the last output.
  h_prev = jnp.concatenate([carry0[0][None], hs[:-1]], axis=0)
  w_h_t = w_h.T

  if cell == 'rnn':
    def body(dh_next, inp):
      d_h_t, h_t = inp
      dz = (d_h_t + dh_next) * (1.0 - h_t * h_t)
      return dz @ w_h_t, dz
    (dh0,), d_final_h = (None,), d_final[0]
    dh0, dz = jax.lax.scan(body, d_final_h, (d_hs, hs), reverse=True, unroll=unroll)
    d_carry0 = (dh0,)
    dxp = dhh = dz
    d_b_hn = None
  elif cell == 'lstm':
    gates, cs = saved
    c_prev = jnp.concatenate([carry0[1][None], cs[:-1]], axis=0)

    def body(dcarry, inp):
      dh_next, dc_next = dcarry
      d_h_t, gates_t, c_t, c_prev_t = inp
      i = gates_t[:, :hidden]
      f = gates_t[:, hidden:2 * hidden]
      g = gates_t[:, 2 * hidden:3 * hidden]
      o = gates_t[:, 3 * hidden:]
      dh = d_h_t + dh_next
      tc = jnp.tanh(c_t)
      dc = dc_next + dh * o * (1.0 - tc * tc)
      dz = jnp.concatenate([dc * g * i * (1.0 - i), dc * c_prev_t * f * (1.0 - f),
                            dc * i * (1.0 - g * g), dh * tc * o * (1.0 - o)], axis=-1)
      return (dz @ w_h_t, dc * f), dz
    d_carry0, dz = jax.lax.scan(body, tuple(d_final), (d_hs, gates, cs, c_prev),
                                reverse=True, unroll=unroll)
    dxp = dhh = dz
    d_b_hn = None
  else:  # gru
    (acts,) = saved

    def body(dh_next, inp):
      d_h_t, acts_t, h_prev_t = inp
      r = acts_t[:, :hidden]
      z = acts_t[:, hidden:2 * hidden]
      n = acts_t[:, 2 * hidden:3 * hidden]
      hn = acts_t[:, 3 * hidden:]
      dh = d_h_t + dh_next
      dan = dh * (1.0 - z) * (1.0 - n * n)
      dar = dan * hn * r * (1.0 - r)
      daz = dh * (h_prev_t - n) * z * (1.0 - z)
      dhh = jnp.concatenate([dar, daz, dan * r], axis=-1)
      dxp = jnp.concatenate([dar, daz, dan], axis=-1)
      return dh * z + dhh @ w_h_t, (dxp, dhh)
    dh0, (dxp, dhh) = jax.lax.scan(body, d_final[0], (d_hs, acts, h_prev), reverse=True,
                                   unroll=unroll)
    d_carry0 = (dh0,)
    d_b_hn = jnp.sum(dhh[..., 2 * hidden:], axis=(0, 1))
  # The weight gradient as one matmul over all time steps ([T*B, H]^T [T*B, G*H]).
  t, bsz, g = dhh.shape
  d_w_h = h_prev.reshape(t * bsz, hidden).T @ dhh.reshape(t * bsz, g)
  d_b = jnp.sum(dxp, axis=(0, 1))
  if b_hn is None:
    d_b_hn = None
  return d_w_h, d_b, d_b_hn, dxp, tuple(d_carry0)


_recurrence_fast.defvjp(_recurrence_fast_fwd, _recurrence_fast_bwd)


def recurrence_fast(cell: str, params: Params, xp: jax.Array, carry: Carry,
                    unroll: int = 1) -> tuple[jax.Array, Carry]:
  """`recurrence` with the custom VJP above: same values, same gradients, faster.
  The minimal cells run as a parallel scan instead."""
  if cell == 'lru':
    return lru_parallel(params, xp, carry)
  if cell in MINIMAL:
    return parallel_recurrence(cell, params, xp, carry)
  return _recurrence_fast(cell, params['W_h'], params['b'], params.get('b_hn'), xp,
                          tuple(carry), unroll)


# ----------------------------------------------------------------------------
# The minimal cells in parallel over time.
#
# h_t = a_t h_{t-1} + b_t with a_t in (0, 1) and b_t > 0: from a zero state every
# partial sum is positive and can be kept as its logarithm. (log a, log b) pairs
# compose associatively as (a1, b1) then (a2, b2) = (a1 + a2, logaddexp(b1 + a2, b2)),
# which `lax.associative_scan` evaluates in O(log T) depth, without forming a
# product of many gates outside log space. The carried state enters linearly.


def _log_coefficients(cell: str, z: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(log a_t, log b_t) of a minimal cell from its pre-activations z = x W_x + b."""
  if cell == 'mingru':
    k, cand = jnp.split(z, 2, axis=-1)
    return -jax.nn.softplus(k), -jax.nn.softplus(-k) + log_positive(cand)
  kf, ki, cand = jnp.split(z, 3, axis=-1)
  log_f, log_i = -jax.nn.softplus(-kf), -jax.nn.softplus(-ki)
  log_s = jnp.logaddexp(log_f, log_i)
  return log_f - log_s, log_i - log_s + log_positive(cand)


def _compose(first, second):
  (a1, b1), (a2, b2) = first, second
  return a1 + a2, jnp.logaddexp(b1 + a2, b2)


def parallel_recurrence(cell: str, params: Params, xp: jax.Array, carry: Carry
                        ) -> tuple[jax.Array, Carry]:
  """A minimal cell over xp = x W_x [T, B, G*H] (no bias), in parallel over time:
  h_t = A_t h_0 + S_t, with A_t the product of the gates a_1..a_t and S_t the
  recurrence from zero, both from one scan in log space."""
  log_a, log_b = _log_coefficients(cell, xp + params['b'])
  log_prod, log_sum = jax.lax.associative_scan(_compose, (log_a, log_b), axis=0)
  (h0,) = carry
  hs = jnp.exp(log_prod) * h0[None] + jnp.exp(log_sum)
  return hs, (hs[-1],)


def _compose_linear(first, second):
  (a1, b1), (a2, b2) = first, second
  return a1 * a2, b1 * a2 + b2


def lru_parallel(params: Params, xp: jax.Array, carry: Carry) -> tuple[jax.Array, Carry]:
  """An LRU layer over xp = x W_x [T, B, 3H] (no bias), in parallel over time:
  s_t = lambda^t s_0 + S_t, where S_t is the recurrence from zero, both from one
  associative scan of (lambda, gamma u_t) pairs in complex arithmetic (|lambda| < 1,
  so the products stay bounded)."""
  z = xp + params['b']
  u_re, u_im, skip = jnp.split(z, 3, axis=-1)
  lam_re, lam_im, gamma = lru_lambda(params)
  real = lam_re.dtype
  lam = jax.lax.complex(lam_re, lam_im)
  u = jax.lax.complex((gamma * u_re).astype(real), (gamma * u_im).astype(real))
  powers, sums = jax.lax.associative_scan(
      _compose_linear, (jnp.broadcast_to(lam, u.shape), u), axis=0)
  s_re, s_im = carry
  s = powers * jax.lax.complex(s_re.astype(real), s_im.astype(real))[None] + sums
  out_re, out_im = jnp.real(s).astype(s_re.dtype), jnp.imag(s).astype(s_im.dtype)
  hs = _lru_output(params, out_re, out_im, skip)
  return hs, (out_re[-1], out_im[-1])
