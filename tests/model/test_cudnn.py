"""The cuDNN LSTM path, checked on CPU: our weights in cuDNN's layout and the glue
around `jax.experimental.rnn.lstm`, run with its reference implementation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import rnn

from rnnlm.model import cells
from rnnlm.model import recurrence


def _reference_lstm(x, h_0, c_0, weights, seq_lengths, *, input_size, hidden_size, num_layers,
                    dropout, bidirectional):
  """`rnn.lstm`'s signature, computed by `rnn.lstm_ref` from the unpacked weights."""
  w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, input_size, hidden_size, num_layers,
                                                    bidirectional)
  return rnn.lstm_ref(x, h_0, c_0, w_ih, w_hh, b_ih, b_hh, seq_lengths, input_size, hidden_size,
                      num_layers, dropout, bidirectional)


@pytest.mark.parametrize('tokens', [False, True])
def test_cudnn_layer_matches_our_lstm(tokens):
  t, b, d, h = 7, 3, 5, 4
  keys = jax.random.split(jax.random.key(0), 5)
  params = cells.init_params(keys[0], 'lstm', d, h)
  params['b'] = 0.1 * jax.random.normal(keys[1], params['b'].shape)
  carry = (0.3 * jax.random.normal(keys[2], (b, h)), 0.3 * jax.random.normal(keys[3], (b, h)))
  if tokens:  # Characters: ids into the rows of W_x.
    x = recurrence.Tokens(params['W_x'], jax.random.randint(keys[4], (t, b), 0, d))
  else:
    x = jax.random.normal(keys[4], (t, b, d))

  def ours(params, carry):  # The plain lax.scan LSTM, checked against NumPy elsewhere.
    xp = params['W_x'][x.ids] if tokens else x @ params['W_x']
    return cells.recurrence('lstm', params, xp, carry)

  def theirs(params, carry):
    xin = recurrence.Tokens(params['W_x'], x.ids) if tokens else x
    return recurrence._cudnn_layer(params, xin, carry, lstm=_reference_lstm)

  (hs_a, (h_a, c_a)), (hs_b, (h_b, c_b)) = ours(params, carry), theirs(params, carry)
  np.testing.assert_allclose(hs_b, hs_a, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(h_b, h_a, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(c_b, c_a, rtol=1e-5, atol=1e-6)
  # Gradients reach our parameters through the layout change.
  loss = lambda f: lambda p, c: jnp.sum(jnp.sin(f(p, c)[0])) + jnp.sum(f(p, c)[1][1] ** 2)
  ga = jax.grad(loss(ours), argnums=(0, 1))(params, carry)
  gb = jax.grad(loss(theirs), argnums=(0, 1))(params, carry)
  for a, b_ in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
    np.testing.assert_allclose(b_, a, rtol=1e-4, atol=1e-6)


def test_cudnn_weights_layout_round_trips():
  params = cells.init_params(jax.random.key(1), 'lstm', 6, 8)
  w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(recurrence.cudnn_weights(params), 6, 8, 1,
                                                    False)
  np.testing.assert_array_equal(w_ih[0], params['W_x'].T)
  np.testing.assert_array_equal(w_hh[0], params['W_h'].T)
  np.testing.assert_array_equal(b_ih[0], params['b'])
  np.testing.assert_array_equal(b_hh[0], np.zeros(32))


def test_cudnn_is_refused_where_it_cannot_run():
  from rnnlm.errors import UserError
  with pytest.raises(UserError, match='cuDNN needs a GPU backend'):
    recurrence.resolve('cudnn', 'lstm', 64)
  with pytest.raises(UserError, match='LSTM layers only'):
    recurrence.resolve('cudnn', 'gru', 64)
  assert recurrence.resolve('auto', 'lstm', 64) in ('kernel', 'scan')  # On this CPU.
