"""The character transformer against NumPy float64, and read as a stream."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rnnlm.model.transformer import CharTransformer


def _np_forward(model, seq, valid, context, rotary):
  """The whole model in NumPy float64 over a buffer `seq` [B, S] of which the last
  positions are the window; returns hidden states of every position, pre-head."""
  f = lambda a: np.asarray(a[...] if hasattr(a, '__getitem__') and not isinstance(a, np.ndarray)
                           else a, np.float64)
  b, s = seq.shape
  x = f(model.embed.embedding)[seq]
  if not rotary:
    x = x + f(model.pos)[:s][None]

  def ln(v, m):
    mu, var = v.mean(-1, keepdims=True), v.var(-1, keepdims=True)
    return (v - mu) / np.sqrt(var + 1e-6) * f(m.scale) + f(m.bias)

  def rope(t):
    d = t.shape[-1]
    freqs = 1.0 / (10000.0 ** (np.arange(0, d, 2) / d))
    ang = np.arange(s)[:, None] * freqs[None]
    cos, sin = np.cos(ang)[None, :, None], np.sin(ang)[None, :, None]
    x1, x2 = t[..., 0::2], t[..., 1::2]
    return np.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).reshape(t.shape)

  gelu = lambda v: 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v ** 3)))
  q_i, k_i = np.arange(s)[:, None], np.arange(s)[None, :]
  mask = (k_i <= q_i) & (k_i > q_i - context) & valid[:, None, :]
  for blk in model.blocks:
    d = x.shape[-1]
    hd = d // blk.heads
    qkv = ln(x, blk.ln1) @ f(blk.qkv.kernel) + f(blk.qkv.bias)
    q, k, v = (t.reshape(b, s, blk.heads, hd) for t in np.split(qkv, 3, -1))
    if rotary:
      q, k = rope(q), rope(k)
    att = np.einsum('bqhd,bkhd->bhqk', q, k) / np.sqrt(hd)
    att = np.where(mask[:, None], att, -1e30)  # Rows of padding see nothing real.
    att = np.exp(att - att.max(-1, keepdims=True))
    att /= att.sum(-1, keepdims=True)
    y = np.einsum('bhqk,bkhd->bqhd', att, v).reshape(b, s, d)
    x = x + y @ f(blk.proj.kernel) + f(blk.proj.bias)
    h = gelu(ln(x, blk.ln2) @ f(blk.fc.kernel) + f(blk.fc.bias))
    x = x + h @ f(blk.out.kernel) + f(blk.out.bias)
  return ln(x, model.ln_f) @ f(model.head.kernel) + f(model.head.bias)


@pytest.mark.parametrize('positions', ['learned', 'rotary'])
def test_forward_matches_numpy_float64(positions):
  v, c, t, b = 11, 6, 4, 2
  model = CharTransformer(v, hidden_size=16, num_layers=2, num_heads=2, context_length=c,
                          positions=positions, rngs=nnx.Rngs(0))
  rng = np.random.default_rng(0)
  carry = {'tokens': jnp.asarray(rng.integers(0, v, (b, c)), jnp.float32),
           'valid': jnp.asarray(np.array([[1] * c, [0, 0, 0, 1, 1, 1]]), jnp.float32)}
  tokens = rng.integers(0, v, (b, t))
  logits, new = model(jnp.asarray(tokens), carry)
  seq = np.concatenate([np.asarray(carry['tokens'], np.int64), tokens], 1)
  valid = np.concatenate([np.asarray(carry['valid']) > 0, np.ones((b, t), bool)], 1)
  want = _np_forward(model, seq, valid, c, positions == 'rotary')[:, c:]
  np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(np.asarray(new['tokens']), seq[:, -c:])


@pytest.mark.slow
def test_a_stream_read_in_windows_equals_one_step_at_a_time():
  # One layer, rotary positions: exactly the same attention either way. (With more
  # layers the context's deeper states are recomputed from the buffer each time, as in
  # cache-free sliding-window inference, and the two readings differ slightly.)
  v, c = 9, 8
  model = CharTransformer(v, hidden_size=16, num_layers=1, num_heads=4, context_length=c,
                          positions='rotary', rngs=nnx.Rngs(1))
  tokens = jnp.asarray(np.random.default_rng(1).integers(0, v, (2, 15)))
  carry, windows = model.initial_carry(2), []
  for lo in range(0, 15, 5):
    logits, carry = model(tokens[:, lo:lo + 5], carry)
    windows.append(logits)
  carry, steps = model.initial_carry(2), []
  for i in range(15):
    logits, carry = model.step(tokens[:, i], carry)
    steps.append(logits)
  np.testing.assert_allclose(np.stack(steps, 1), np.concatenate(windows, 1), rtol=1e-4, atol=1e-5)


def test_each_character_sees_at_most_context_length_characters():
  v, c = 9, 4
  model = CharTransformer(v, hidden_size=8, num_layers=1, num_heads=2, context_length=c,
                          positions='rotary', rngs=nnx.Rngs(2))
  base = np.random.default_rng(2).integers(0, v, (1, 8))
  run = lambda toks: np.asarray(model(jnp.asarray(toks), model.initial_carry(1))[0])
  far, near = base.copy(), base.copy()
  far[0, 2] = (far[0, 2] + 1) % v   # 5 back from the last character: outside its context.
  near[0, 5] = (near[0, 5] + 1) % v  # 2 back: inside.
  np.testing.assert_allclose(run(far)[0, -1], run(base)[0, -1], rtol=1e-6)
  assert not np.allclose(run(near)[0, -1], run(base)[0, -1])


def test_transformer_trains_resumes_and_is_refused_by_look_inside(tmp_path, caplog):
  from configs import tiny
  from rnnlm.training import train
  from rnnlm.errors import UserError
  from rnnlm.model import activations
  from rnnlm.training import checkpoint
  config = tiny.get_config()
  config.model.arch, config.model.hidden_size, config.model.context_length = 'transformer', 32, 16
  config.model.positions = 'learned'
  config.train.num_steps, config.eval.eval_every, config.train.learning_rate = 30, 10, 3e-3
  with caplog.at_level('INFO'):
    straight = train.train_and_evaluate(config, str(tmp_path / 'a'))
  assert 'Model transformer: ' in caplog.text  # Not the unused model.cell.
  train.train_and_evaluate(config, str(tmp_path / 'b'), stop_after_step=15)
  resumed = train.train_and_evaluate(config, str(tmp_path / 'b'))
  assert resumed['best_val_loss'] == straight['best_val_loss']  # Resume is exact.
  losses = [json.loads(l)['val_loss'] for l in open(tmp_path / 'a' / 'metrics.jsonl')]
  assert losses[-1] < losses[0]
  model, _, _ = checkpoint.load_model(str(tmp_path / 'a'))
  with pytest.raises(UserError, match='transformer'):
    activations.run_over_text(model, np.zeros(20, np.int64), window=8)
  config.train.seq_length = 40  # Longer than the context, with learned positions.
  with pytest.raises(UserError, match='context_length'):
    train.train_and_evaluate(config, str(tmp_path / 'c'))
  assert not os.path.exists(tmp_path / 'c')


def _np_cached_stream(model, tokens, context):
  """model.context_states='cached' in NumPy float64, one character at a time: each
  block's input at every position so far is kept, and position p of block l attends
  to block l's inputs at p - context + 1 .. p (rotary at absolute indices)."""
  f = lambda a: np.asarray(a[...], np.float64)
  b, n = tokens.shape
  ln = lambda v, m: ((v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-6)
                     * f(m.scale) + f(m.bias))
  gelu = lambda v: 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v ** 3)))

  def rope(t, pos):  # t [B, S, heads, hd] at positions pos [S].
    d = t.shape[-1]
    ang = np.asarray(pos)[:, None] * (1.0 / (10000.0 ** (np.arange(0, d, 2) / d)))[None]
    cos, sin = np.cos(ang)[None, :, None], np.sin(ang)[None, :, None]
    x1, x2 = t[..., 0::2], t[..., 1::2]
    return np.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).reshape(t.shape)

  inputs = [[] for _ in model.blocks]  # Per block: its input at each position, [B, d].
  out = []
  for p in range(n):
    x = f(model.embed.embedding)[tokens[:, p]]
    for l, blk in enumerate(model.blocks):
      inputs[l].append(x)
      lo = max(0, p - context + 1)
      seen = np.stack(inputs[l][lo:p + 1], 1)  # [B, S, d]
      d, hd = x.shape[-1], x.shape[-1] // blk.heads
      qkv = ln(seen, blk.ln1) @ f(blk.qkv.kernel) + f(blk.qkv.bias)
      q, k, v = (a.reshape(b, -1, blk.heads, hd) for a in np.split(qkv, 3, -1))
      q, k = rope(q[:, -1:], [p]), rope(k, range(lo, p + 1))
      att = np.einsum('bqhd,bkhd->bhqk', q, k) / np.sqrt(hd)
      att = np.exp(att - att.max(-1, keepdims=True))
      att /= att.sum(-1, keepdims=True)
      y = np.einsum('bhqk,bkhd->bqhd', att, v).reshape(b, d)
      x = x + y @ f(blk.proj.kernel) + f(blk.proj.bias)
      x = x + gelu(ln(x, blk.ln2) @ f(blk.fc.kernel) + f(blk.fc.bias)) @ f(blk.out.kernel) \
          + f(blk.out.bias)
    out.append(ln(x, model.ln_f) @ f(model.head.kernel) + f(model.head.bias))
  return np.stack(out, 1)


@pytest.mark.slow
def test_cached_context_states_match_numpy_float64_in_any_windows():
  # With cached states a character's states do not depend on the window boundaries:
  # windows of 5, 3 and 7 (longer than the context), and one character at a time,
  # all equal the one-character-at-a-time reference, with two layers.
  v, c, n = 11, 6, 15
  model = CharTransformer(v, hidden_size=16, num_layers=2, num_heads=2, context_length=c,
                          positions='rotary', context_states='cached', rngs=nnx.Rngs(3))
  tokens = np.random.default_rng(3).integers(0, v, (2, n))
  want = _np_cached_stream(model, tokens, c)
  carry, got = model.initial_carry(2), []
  for lo, hi in ((0, 5), (5, 8), (8, 15)):
    logits, carry = model(jnp.asarray(tokens[:, lo:hi]), carry)
    got.append(logits)
  np.testing.assert_allclose(np.concatenate(got, 1), want, rtol=1e-4, atol=1e-4)
  assert carry['states'].shape == (2, 2, c, 16)
  carry, steps = model.initial_carry(2), []
  for i in range(n):
    logits, carry = model.step(jnp.asarray(tokens[:, i]), carry)
    steps.append(logits)
  np.testing.assert_allclose(np.stack(steps, 1), want, rtol=1e-4, atol=1e-4)


def test_cached_and_recomputed_context_agree_with_one_layer():
  # One block: its input is the embedding either way, so the two modes are the same model.
  v, c = 9, 8
  kw = dict(hidden_size=16, num_layers=1, num_heads=4, context_length=c, positions='rotary')
  cached = CharTransformer(v, context_states='cached', rngs=nnx.Rngs(4), **kw)
  recomputed = CharTransformer(v, rngs=nnx.Rngs(4), **kw)
  tokens = jnp.asarray(np.random.default_rng(4).integers(0, v, (2, 20)))
  outs = []
  for model in (cached, recomputed):
    carry, got = model.initial_carry(2), []
    for lo in range(0, 20, 5):
      logits, carry = model(tokens[:, lo:lo + 5], carry)
      got.append(logits)
    outs.append(np.concatenate(got, 1))
  np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)


def test_cached_context_states_train_and_resume_exactly(tmp_path):
  from configs import tiny
  from rnnlm.training import train
  from rnnlm.errors import UserError
  config = tiny.get_config()
  config.model.arch, config.model.hidden_size, config.model.context_length = 'transformer', 32, 16
  config.model.num_layers, config.model.context_states = 2, 'cached'
  config.train.num_steps, config.eval.eval_every, config.train.learning_rate = 20, 10, 3e-3
  straight = train.train_and_evaluate(config, str(tmp_path / 'a'))
  train.train_and_evaluate(config, str(tmp_path / 'b'), stop_after_step=10)
  resumed = train.train_and_evaluate(config, str(tmp_path / 'b'))
  assert resumed['best_val_loss'] == straight['best_val_loss']  # The carry's states resume.
  losses = [json.loads(l)['val_loss'] for l in open(tmp_path / 'a' / 'metrics.jsonl')]
  assert losses[-1] < losses[0]
  config.model.context_states = 'recompute'  # The carry's shape differs: refused.
  with pytest.raises(UserError, match='context_states'):
    train.train_and_evaluate(config, str(tmp_path / 'b'))
  config.model.context_states, config.model.positions = 'cached', 'learned'
  with pytest.raises(UserError, match='rotary'):
    train.train_and_evaluate(config, str(tmp_path / 'c'))
  config.model.context_states = 'kept'
  with pytest.raises(UserError, match='recompute or cached'):
    train.train_and_evaluate(config, str(tmp_path / 'c'))
  assert not os.path.exists(tmp_path / 'c')


def _np_attend(q, k, v, valid, window):
  """Banded causal attention in NumPy float64: the last T of S positions query."""
  t, s, hd = q.shape[1], k.shape[1], q.shape[-1]
  q_i, k_i = np.arange(s - t, s)[:, None], np.arange(s)[None, :]
  mask = (k_i <= q_i) & (k_i > q_i - window) & valid[:, None, :]
  att = np.where(mask[:, None], np.einsum('bqhd,bkhd->bhqk', q, k) / np.sqrt(hd), -1e30)
  att = np.exp(att - att.max(-1, keepdims=True))
  att /= att.sum(-1, keepdims=True)
  return np.einsum('bhqk,bkhd->bqhd', att, v)


def test_attention_gradient_matches_finite_differences_in_float64():
  """The attention's hand-written gradient against central differences of a NumPy
  float64 attention, along random directions, with padding and a band narrower than
  the keys."""
  import jax
  from rnnlm.model.transformer import attend
  b, t, s, heads, hd, window = 2, 3, 7, 2, 4, 4
  rng = np.random.default_rng(1)
  q, k, v = (rng.normal(size=(b, n, heads, hd)) for n in (t, s, s))
  valid = np.ones((b, s), bool)
  valid[1, :3] = False  # A stream that began inside the context.
  w = rng.normal(size=(b, t, heads, hd))  # The loss is sum(w * attention).
  loss = lambda q, k, v: jnp.sum(jnp.asarray(w, jnp.float32) * attend(
      q, k, v, jnp.asarray(valid), window, jnp.float32))
  grads = jax.grad(loss, argnums=(0, 1, 2))(*(jnp.asarray(a, jnp.float32) for a in (q, k, v)))
  eps = 1e-5
  for i, g in enumerate(grads):
    for _ in range(3):
      u = rng.normal(size=g.shape)
      args = lambda sign: [a + sign * eps * u if j == i else a for j, a in enumerate((q, k, v))]
      numeric = (np.sum(w * _np_attend(*args(1), valid, window))
                 - np.sum(w * _np_attend(*args(-1), valid, window))) / (2 * eps)
      np.testing.assert_allclose(np.sum(np.asarray(g, np.float64) * u), numeric, rtol=1e-4,
                                 atol=1e-4)
  # The forward too, and the gradient of a key no query may see is zero.
  np.testing.assert_allclose(
      attend(*(jnp.asarray(a, jnp.float32) for a in (q, k, v)), jnp.asarray(valid), window,
             jnp.float32), _np_attend(q, k, v, valid, window), rtol=1e-5, atol=1e-5)
  assert np.all(np.asarray(grads[1])[1, :3] == 0) and np.all(np.asarray(grads[1])[:, 0] == 0)
