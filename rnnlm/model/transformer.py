"""A small causal transformer over characters, with the CharLM interface.

`model.arch='transformer'` puts it where the recurrent model would be, so that the
train loop, sampling, sweeps and emergence runs compare RNNs and transformers on the
same data, splits and clock. Pre-norm blocks (LayerNorm, causal multi-head
attention, residual; LayerNorm, 4x GELU MLP, residual) as in GPT-2 and nanoGPT.

Windows are read the way the recurrent models read them, as streams: the carry holds
the stream's last `context_length` characters (and which of them are real), and each
window attends to them. What the context's deeper states are is `context_states`:

- 'recompute': they are recomputed from the buffer of characters each window, as in
  cache-free sliding-window inference. Every character sees at most `context_length`
  characters (itself and those before it), but with more than one layer the deepest
  states of a character depend slightly on where the window boundaries fall, and a
  window of T characters computes C + T positions.
- 'cached': the carry also holds each block's input for the last `context_length`
  positions, kept from the window that computed them (Transformer-XL's state reuse;
  no gradient flows into them). A window computes only its own T positions, whose
  keys and values include the context's, so a character's states no longer depend
  on the window boundaries (reading a stream in windows equals reading it one
  character at a time) and its receptive field is `num_layers` x `context_length`.
  Positions must be rotary (relative), since a state is reused at a new offset.

Positions are learned (an embedding of the index in the buffer of context + window:
sampling, one character at a time, reads each at the first index of a window) or
rotary (relative by construction).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from rnnlm.model import dropout as dropout_lib

# How the context's deeper states are had (the module docstring; `model.context_states`).
CONTEXT_STATES = ('recompute', 'cached')

# The carry: the last C characters of each stream (as float32, so that a reset can
# scale it like a recurrent state) and a mask of which are real.
Carry = dict


def _rotary(x: jax.Array, positions: jax.Array) -> jax.Array:
  """Rotary position embedding of x [B, S, heads, d] at integer positions [S]."""
  d = x.shape[-1]
  freqs = 1.0 / (10000.0 ** (jnp.arange(0, d, 2, dtype=jnp.float32) / d))
  angles = positions[:, None].astype(jnp.float32) * freqs[None]  # [S, d/2]
  cos, sin = jnp.cos(angles)[None, :, None], jnp.sin(angles)[None, :, None]
  x1, x2 = x[..., 0::2].astype(jnp.float32), x[..., 1::2].astype(jnp.float32)
  out = jnp.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
  return out.reshape(x.shape).astype(x.dtype)


def attend(q: jax.Array, k: jax.Array, v: jax.Array, valid: jax.Array, window: int,
           dtype) -> jax.Array:
  """Causal attention of the last T of S positions over a band of `window`.

  q [B, T, heads, d] are the queries of positions S-T..S-1, k and v [B, S, heads, d];
  a position sees the real (valid [B, S]) positions among the `window` up to and
  including itself. -> [B, T, heads, d]. Scores and softmax in float32."""
  t, s, hd = q.shape[1], k.shape[1], q.shape[-1]
  q_idx, k_idx = jnp.arange(s - t, s)[:, None], jnp.arange(s)[None, :]
  seen = (k_idx <= q_idx) & (k_idx > q_idx - window) & valid[:, None, :]
  # Masking by adding a bias (not a select) and heads before positions: each makes
  # the step faster on a CPU (docs/performance.md, the transformer's attention).
  bias = jnp.where(seen, 0.0, -1e30).astype(jnp.float32)  # [B, T, S]
  heads_first = lambda a: jnp.swapaxes(a, 1, 2)  # [B, heads, positions, d]
  y = _attend(heads_first(q * (1.0 / math.sqrt(hd))), heads_first(k), heads_first(v), bias,
              dtype)
  return heads_first(y)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _attend(q, k, v, bias, dtype):
  """softmax(q k^T + bias) v over [B, heads, positions, d]; the gradient written out
  (autodiff's costs a fifth more time on a CPU)."""
  return _attend_fwd(q, k, v, bias, dtype)[0]


def _attend_fwd(q, k, v, bias, dtype):
  a = jax.nn.softmax(
      jnp.einsum('bhqd,bhkd->bhqk', q, k).astype(jnp.float32) + bias[:, None], axis=-1)
  y = jnp.einsum('bhqk,bhkd->bhqd', a.astype(dtype), v)
  return y, (q, k, v, a, y)


def _attend_bwd(dtype, res, g):
  q, k, v, a, y = res
  dv = jnp.einsum('bhqk,bhqd->bhkd', a.astype(dtype), g.astype(dtype))
  da = jnp.einsum('bhqd,bhkd->bhqk', g.astype(dtype), v).astype(jnp.float32)
  # Softmax's gradient; sum_k a da = sum_d g y, the cheaper of the two.
  row = jnp.sum(g.astype(jnp.float32) * y.astype(jnp.float32), -1, keepdims=True)
  dl = (a * (da - row)).astype(dtype)
  dq = jnp.einsum('bhqk,bhkd->bhqd', dl, k)
  dk = jnp.einsum('bhqk,bhqd->bhkd', dl, q)
  return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype), None


_attend.defvjp(_attend_fwd, _attend_bwd)


class Block(nnx.Module):
  def __init__(self, d: int, heads: int, dropout: float, num_layers: int, *, rngs: nnx.Rngs):
    init = nnx.initializers.normal(0.02)
    out_init = nnx.initializers.normal(0.02 / math.sqrt(2 * num_layers))
    self.heads = heads
    self.ln1 = nnx.LayerNorm(d, rngs=rngs)
    self.qkv = nnx.Linear(d, 3 * d, kernel_init=init, rngs=rngs)
    self.proj = nnx.Linear(d, d, kernel_init=out_init, rngs=rngs)
    self.ln2 = nnx.LayerNorm(d, rngs=rngs)
    self.fc = nnx.Linear(d, 4 * d, kernel_init=init, rngs=rngs)
    self.out = nnx.Linear(4 * d, d, kernel_init=out_init, rngs=rngs)
    self.dropout = dropout

  def __call__(self, x, valid, window: int, positions, rotary: bool, dtype, deterministic,
               keys, context=None):
    """x [B, T, d]: the positions computed; context [B, C, d] or None: the inputs of
    earlier positions, attended to (keys and values) but not computed. valid [B, C+T]
    says which positions are real, each position sees the `window` positions up to and
    including itself; positions [C+T] are the rotary indices."""
    b, t, d = x.shape
    hd = d // self.heads
    dense = lambda v, w, bias: v.astype(dtype) @ w.astype(dtype) + bias.astype(dtype)
    kernel, bias = self.qkv.kernel[...], self.qkv.bias[...]
    if context is None:
      q, k, v = jnp.split(dense(self.ln1(x), kernel, bias), 3, axis=-1)
    else:
      seen = self.ln1(jnp.concatenate([context, x], 1))
      q = dense(seen[:, -t:], kernel[:, :d], bias[:d])
      k, v = jnp.split(dense(seen, kernel[:, d:], bias[d:]), 2, axis=-1)
    split = lambda a: a.reshape(b, a.shape[1], self.heads, hd)
    q, k, v = split(q), split(k), split(v)
    if rotary:
      q, k = _rotary(q, positions[-t:]), _rotary(k, positions)
    y = attend(q, k, v, valid, window, dtype).reshape(b, t, d)
    drop = lambda v, key: dropout_lib.dropout(v, self.dropout, None if deterministic else key,
                                              batch_axis=0)
    layer = lambda m, v: dense(v, m.kernel[...], m.bias[...])
    x = x + drop(layer(self.proj, y).astype(jnp.float32), keys[0])
    h = jax.nn.gelu(layer(self.fc, self.ln2(x)))
    return x + drop(layer(self.out, h).astype(jnp.float32), keys[1])


class CharTransformer(nnx.Module):
  """Token (+ learned position) embedding -> blocks -> LayerNorm -> logits."""

  def __init__(self, vocab_size: int, *, hidden_size: int = 256, num_layers: int = 4,
               num_heads: int = 4, context_length: int = 128, positions: str = 'learned',
               dropout: float = 0.0, compute_dtype: str = 'float32',
               context_states: str = 'recompute', rngs: nnx.Rngs):
    if hidden_size % num_heads:
      raise ValueError(f'hidden_size {hidden_size} is not a multiple of num_heads {num_heads}')
    if context_states not in CONTEXT_STATES:
      raise ValueError(f'context_states is one of {CONTEXT_STATES}, not {context_states!r}')
    if context_states == 'cached' and positions != 'rotary':
      raise ValueError('cached context states need rotary positions')
    self.vocab_size = vocab_size
    self.hidden_size = hidden_size
    self.num_layers = num_layers
    self.context_length = context_length
    self.rotary = positions == 'rotary'
    self.cached = context_states == 'cached'
    self.compute_dtype = jnp.dtype(compute_dtype)
    self.embed = nnx.Embed(vocab_size, hidden_size, embedding_init=nnx.initializers.normal(0.02),
                           rngs=rngs)
    # Learned positions index the buffer of context + window; the window is at most
    # `context_length` long in training, so 2x covers every index.
    self.pos = (None if self.rotary else
                nnx.Param(0.01 * jax.random.normal(rngs.params(), (2 * context_length,
                                                                   hidden_size))))
    self.blocks = nnx.List([Block(hidden_size, num_heads, dropout, num_layers, rngs=rngs)
                            for _ in range(num_layers)])
    self.ln_f = nnx.LayerNorm(hidden_size, rngs=rngs)
    self.head = nnx.Linear(hidden_size, vocab_size, kernel_init=nnx.initializers.normal(0.02),
                           rngs=rngs)
    self.dropout = dropout

  def initial_carry(self, batch_size: int) -> Carry:
    c = self.context_length
    carry = {'tokens': jnp.zeros((batch_size, c), jnp.float32),
             'valid': jnp.zeros((batch_size, c), jnp.float32)}
    if self.cached:  # Each block's input at the context's positions.
      carry['states'] = jnp.zeros((batch_size, self.num_layers, c, self.hidden_size),
                                  jnp.float32)
    return carry

  def __call__(self, tokens: jax.Array, carry: Carry,
               dropout_key: jax.Array | None = None) -> tuple[jax.Array, Carry]:
    """tokens [B, T] after the context in `carry` -> (logits [B, T, V], carry)."""
    b, t = tokens.shape
    c = self.context_length
    if not self.rotary and c + t > self.pos.shape[0]:
      raise ValueError(f'a window of {t} characters is longer than context_length {c}')
    deterministic = dropout_key is None
    keys = ([None] * (2 * self.num_layers + 1) if deterministic
            else list(jax.random.split(dropout_key, 2 * self.num_layers + 1)))
    seq = jnp.concatenate([carry['tokens'].astype(jnp.int32), tokens.astype(jnp.int32)], 1)
    valid = jnp.concatenate([carry['valid'], jnp.ones((b, t), jnp.float32)], 1) > 0
    s = c + t
    positions = jnp.arange(s)
    run = lambda i, x, context: self.blocks[i](
        x, valid, c, positions, self.rotary, self.compute_dtype, deterministic,
        keys[2 * i:2 * i + 2], context)
    new_carry = {'tokens': seq[:, -c:].astype(jnp.float32),
                 'valid': valid[:, -c:].astype(jnp.float32)}
    if self.cached:
      # Only the window's positions are computed; the context's block inputs come
      # from the carry, and the window's join them there.
      x = dropout_lib.dropout(self.embed(tokens).astype(jnp.float32), self.dropout, keys[-1],
                              batch_axis=0)
      states = []
      for i in range(self.num_layers):
        context = carry['states'][:, i]
        states.append(jnp.concatenate([context, x], 1)[:, -c:])
        x = run(i, x, context)
      new_carry['states'] = jnp.stack(states, 1)
    else:
      x = self.embed(seq).astype(jnp.float32)
      if not self.rotary:
        x = x + self.pos[...][:s][None]
      x = dropout_lib.dropout(x, self.dropout, keys[-1], batch_axis=0)
      for i in range(self.num_layers - 1):
        x = run(i, x, None)
      # The last block's outputs are read only at the window's positions.
      x = run(self.num_layers - 1, x[:, c:], x[:, :c])
    x = self.ln_f(x)
    logits = (x.astype(self.compute_dtype) @ self.head.kernel[...].astype(self.compute_dtype)
              ).astype(jnp.float32) + self.head.bias[...]
    return logits, new_carry

  def step(self, token: jax.Array, carry: Carry) -> tuple[jax.Array, Carry]:
    """One character for sampling: token [batch] -> (logits [batch, vocab], carry)."""
    logits, carry = self(token[:, None], carry)
    return logits[:, 0], carry
