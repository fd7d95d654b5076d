"""The character language model: a Flax NNX module around the pure cells."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from rnnlm import cells

# Per-layer carry tuples, one per layer: ((h, c), (h, c)) for a 2-layer LSTM.
ModelCarry = tuple[cells.Carry, ...]


class RecurrentLayer(nnx.Module):
  """Owns one layer's weights; the math lives in `rnnlm.cells`."""

  def __init__(self, cell: str, in_dim: int, hidden_size: int, *, one_hot_input: bool = False,
               rngs: nnx.Rngs):
    self.cell = cell
    self.hidden_size = hidden_size
    for name, value in cells.init_params(rngs.params(), cell, in_dim, hidden_size,
                                         one_hot_input=one_hot_input).items():
      setattr(self, name, nnx.Param(value))

  def weights(self) -> cells.Params:
    names = ('W_x', 'W_h', 'b') + (('b_hn',) if self.cell == 'gru' else ())
    return {n: getattr(self, n)[...] for n in names}


class CharLM(nnx.Module):
  """Embedding (or one-hot) -> `num_layers` recurrent layers -> logits over the vocab.

  With `embed_dim=0` the input is one-hot, as in char-rnn; the first layer's input
  projection is then a row gather of its W_x rather than a matmul. Dropout (rate
  `dropout`) is applied to each layer's output, i.e. between layers and before the
  output projection, never on the recurrent connection. `fast_recurrence` selects
  the custom-VJP recurrence (`cells.recurrence_fast`, which with `cpu_kernel` runs
  each layer on the CPU through the compiled kernels of `rnnlm.kernels`, as it does
  the weight gradients of the projections and the head); False uses autodiff of
  the plain scan, the reference both are tested against.
  """

  def __init__(self, vocab_size: int, *, cell: str = 'lstm', hidden_size: int = 256,
               num_layers: int = 2, embed_dim: int = 0, dropout: float = 0.0,
               unroll: int = 1, fast_recurrence: bool = True, cpu_kernel: bool = True,
               rngs: nnx.Rngs):
    cells.get_spec(cell)  # Validates the name.
    self.vocab_size = vocab_size
    self.cell = cell
    self.hidden_size = hidden_size
    self.num_layers = num_layers
    self.embed_dim = embed_dim
    self.unroll = unroll
    self.fast_recurrence = fast_recurrence
    self.cpu_kernel = cpu_kernel
    self.embed = nnx.Embed(vocab_size, embed_dim, rngs=rngs) if embed_dim > 0 else None
    in_dims = [embed_dim if embed_dim > 0 else vocab_size] + [hidden_size] * (num_layers - 1)
    self.layers = nnx.List([
        RecurrentLayer(cell, d, hidden_size, one_hot_input=(i == 0 and embed_dim == 0), rngs=rngs)
        for i, d in enumerate(in_dims)])
    self.dropout = nnx.Dropout(dropout)
    self.head = nnx.Linear(hidden_size, vocab_size, rngs=rngs)

  @property
  def _kernels(self) -> bool:
    """Whether the fast path may use the compiled CPU kernels (where they run)."""
    return self.fast_recurrence and self.cpu_kernel

  def initial_carry(self, batch_size: int) -> ModelCarry:
    return tuple(cells.zero_carry(self.cell, batch_size, self.hidden_size)
                 for _ in range(self.num_layers))

  def __call__(self, tokens: jax.Array, carry: ModelCarry,
               dropout_key: jax.Array | None = None) -> tuple[jax.Array, ModelCarry]:
    """Runs the model over a window.

    Args:
      tokens: [batch, time] int token ids.
      carry: the state after the preceding text (`initial_carry` for none).
      dropout_key: a PRNG key turns dropout on (training); None turns it off.

    Returns:
      (logits [batch, time, vocab], carry after the window).
    """
    xs_tokens = tokens.T  # Time-major inside: [T, B].
    deterministic = dropout_key is None
    keys = (jax.random.split(dropout_key, self.num_layers) if not deterministic
            else [None] * self.num_layers)
    new_carry = []
    hs = None
    for i, layer in enumerate(self.layers):
      w = layer.weights()
      table = xp = None
      if i == 0:
        if self.embed is None:
          table = w['W_x']
        elif self.vocab_size <= xs_tokens.size:
          # An embedding followed by a linear map is a lookup in their product:
          # one [V, E] x [E, G*H] matmul instead of a [T*B, E] x [E, G*H] one.
          table = self.embed.embedding[...] @ w['W_x']
        else:
          xp = cells.project_inputs(w, self.embed(xs_tokens), cpu_kernel=self._kernels)
      else:
        xp = cells.project_inputs(w, hs, cpu_kernel=self._kernels)
      if self.fast_recurrence and table is not None:
        hs, c = cells.recurrence_fast_tokens(self.cell, w, table, xs_tokens, carry[i],
                                             unroll=self.unroll, cpu_kernel=self.cpu_kernel)
      elif self.fast_recurrence:
        hs, c = cells.recurrence_fast(self.cell, w, xp, carry[i], unroll=self.unroll,
                                      cpu_kernel=self.cpu_kernel)
      else:
        if table is not None:
          xp = cells.project_tokens({'W_x': table}, xs_tokens)
        hs, c = cells.recurrence(self.cell, w, xp, carry[i], unroll=self.unroll)
      hs = self.dropout(hs, deterministic=deterministic, rngs=keys[i])
      new_carry.append(c)
    logits = cells.matmul(hs, self.head.kernel[...], self._kernels) + self.head.bias[...]
    return jnp.swapaxes(logits, 0, 1), tuple(new_carry)

  def step(self, token: jax.Array, carry: ModelCarry) -> tuple[jax.Array, ModelCarry]:
    """One character for sampling: token [batch] -> (logits [batch, vocab], carry)."""
    logits, carry = self(token[:, None], carry)
    return logits[:, 0], carry


def count_params(model: nnx.Module) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
