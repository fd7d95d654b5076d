import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from np_reference import np_char_lm
from rnnlm.model import CharLM, count_params


def _np_params(model):
  layers = [{k: np.asarray(v, np.float64) for k, v in layer.weights().items()}
            for layer in model.layers]
  return layers, np.asarray(model.head.kernel[...], np.float64), np.asarray(model.head.bias[...], np.float64)


@pytest.mark.parametrize('cell', ['rnn', 'lstm', 'gru', 'mingru', 'minlstm'])
def test_forward_matches_numpy_model(cell):
  v, h, b, t = 11, 8, 3, 5
  model = CharLM(v, cell=cell, hidden_size=h, num_layers=2, rngs=nnx.Rngs(0))
  tokens = np.random.default_rng(0).integers(0, v, (b, t))
  carry = jax.tree.map(lambda a: a + 0.3, model.initial_carry(b))
  logits, new_carry = model(jnp.asarray(tokens), carry)
  layers, hw, hb = _np_params(model)
  np_carry = [tuple(np.asarray(a, np.float64) for a in c) for c in carry]
  want_logits, want_carry = np_char_lm(layers, hw, hb, tokens, np_carry, cell, v)
  np.testing.assert_allclose(np.asarray(logits), want_logits, rtol=1e-4, atol=1e-5)
  for got, want in zip(jax.tree.leaves(new_carry), jax.tree.leaves(want_carry)):
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('cell', ['lstm', 'mingru', 'minlstm'])
def test_carry_continues_across_windows(cell):
  model = CharLM(13, cell=cell, hidden_size=16, num_layers=2, embed_dim=6, rngs=nnx.Rngs(1))
  tokens = jnp.asarray(np.random.default_rng(1).integers(0, 13, (2, 12)))
  whole, c_whole = model(tokens, model.initial_carry(2))
  first, c1 = model(tokens[:, :5], model.initial_carry(2))
  second, c2 = model(tokens[:, 5:], c1)
  np.testing.assert_allclose(np.concatenate([first, second], 1), whole, rtol=1e-5, atol=1e-6)
  for a, b in zip(jax.tree.leaves(c2), jax.tree.leaves(c_whole)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # One character at a time (the sampler's path: the sequential step) agrees too.
  carry, steps = model.initial_carry(2), []
  for t in range(12):
    logits, carry = model.step(tokens[:, t], carry)
    steps.append(logits)
  np.testing.assert_allclose(np.stack(steps, 1), whole, rtol=1e-4, atol=1e-5)


def test_dropout_only_with_key():
  model = CharLM(7, hidden_size=8, dropout=0.5, rngs=nnx.Rngs(0))
  tokens = jnp.zeros((2, 4), jnp.int32)
  a, _ = model(tokens, model.initial_carry(2))
  b, _ = model(tokens, model.initial_carry(2))
  c, _ = model(tokens, model.initial_carry(2), dropout_key=jax.random.key(0))
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def test_param_count_by_hand():
  # One-hot LSTM: layer 1 W_x [V, 4H] + W_h [H, 4H] + b [4H]; layer 2 the same with
  # W_x [H, 4H]; head [H, V] + [V].
  v, h = 10, 6
  model = CharLM(v, cell='lstm', hidden_size=h, num_layers=2, rngs=nnx.Rngs(0))
  want = (v * 4 * h + h * 4 * h + 4 * h) + (h * 4 * h + h * 4 * h + 4 * h) + h * v + v
  assert count_params(model) == want
