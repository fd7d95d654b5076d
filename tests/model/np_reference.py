"""Independent NumPy (float64) implementations of the cell equations, for tests."""

import numpy as np


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def np_rnn(p, x, h):
  return (np.tanh(x @ p['W_x'] + h @ p['W_h'] + p['b']),)


def np_lstm(p, x, h, c):
  H = h.shape[-1]
  Wx, Wh, b = p['W_x'], p['W_h'], p['b']
  gate = lambda k: x @ Wx[:, k * H:(k + 1) * H] + h @ Wh[:, k * H:(k + 1) * H] + b[k * H:(k + 1) * H]
  i, f, g, o = sigmoid(gate(0)), sigmoid(gate(1)), np.tanh(gate(2)), sigmoid(gate(3))
  c_new = f * c + i * g
  return o * np.tanh(c_new), c_new


def np_gru(p, x, h):
  H = h.shape[-1]
  Wx, Wh, b = p['W_x'], p['W_h'], p['b']
  xs = lambda k: x @ Wx[:, k * H:(k + 1) * H] + b[k * H:(k + 1) * H]
  hs = lambda k: h @ Wh[:, k * H:(k + 1) * H]
  r = sigmoid(xs(0) + hs(0))
  z = sigmoid(xs(1) + hs(1))
  n = np.tanh(xs(2) + r * (hs(2) + p['b_hn']))
  return ((1 - z) * n + z * h,)


def np_g(x):
  return np.where(x >= 0, x + 0.5, sigmoid(x))


def np_mingru(p, x, h):
  H = h.shape[-1]
  a = x @ p['W_x'] + p['b']
  z, cand = sigmoid(a[:, :H]), np_g(a[:, H:])
  return ((1 - z) * h + z * cand,)


def np_minlstm(p, x, h):
  H = h.shape[-1]
  a = x @ p['W_x'] + p['b']
  f, i, cand = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np_g(a[:, 2 * H:])
  return (f / (f + i) * h + i / (f + i) * cand,)


NP_STEPS = {'rnn': np_rnn, 'lstm': np_lstm, 'gru': np_gru, 'mingru': np_mingru,
            'minlstm': np_minlstm}


def np_char_lm(layer_params, head_w, head_b, tokens, carry, cell, vocab_size):
  """One-hot char LM forward in NumPy: tokens [B, T] -> logits [B, T, V], carry."""
  x = np.eye(vocab_size)[tokens.T]  # [T, B, V]
  new_carry = []
  for p, c in zip(layer_params, carry):
    outs = []
    for x_t in x:
      c = NP_STEPS[cell](p, x_t, *c)
      outs.append(c[0])
    x = np.stack(outs)
    new_carry.append(c)
  logits = x @ head_w + head_b
  return np.swapaxes(logits, 0, 1), new_carry


def np_lru(p, x, s_re, s_im):
  """One LRU step in complex128: returns ((Re s, Im s), h)."""
  from scipy.special import erf
  H = s_re.shape[-1]
  a = x @ p['W_x'] + p['b']
  u = a[:, :H] + 1j * a[:, H:2 * H]
  lam = np.exp(-np.exp(p['nu_log']) + 1j * np.exp(p['theta_log']))
  s = lam * (s_re + 1j * s_im) + np.exp(p['gamma_log']) * u
  y = np.concatenate([s.real, s.imag], axis=-1) @ p['W_c'] + a[:, 2 * H:]
  return (s.real, s.imag), 0.5 * y * (1 + erf(y / np.sqrt(2)))
