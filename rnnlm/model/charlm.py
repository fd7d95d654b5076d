"""The character language model: a Flax NNX module around the pure cells."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from rnnlm.model import cells
from rnnlm.model import dropout as dropout_lib
from rnnlm.model import recurrence as recurrence_lib

# Per-layer carry tuples, one per layer: ((h, c), (h, c)) for a 2-layer LSTM.
ModelCarry = tuple[cells.Carry, ...]


class RecurrentLayer(nnx.Module):
  """Owns one layer's weights; the math lives in `rnnlm.model.cells`."""

  def __init__(self, cell: str, in_dim: int, hidden_size: int, *, one_hot_input: bool = False,
               rngs: nnx.Rngs):
    self.cell = cell
    self.hidden_size = hidden_size
    for name, value in cells.init_params(rngs.params(), cell, in_dim, hidden_size,
                                         one_hot_input=one_hot_input).items():
      setattr(self, name, nnx.Param(value))

  def weights(self) -> cells.Params:
    return {n: getattr(self, n)[...] for n in cells.get_spec(self.cell).params}


class CharLM(nnx.Module):
  """Embedding (or one-hot) -> `num_layers` recurrent layers -> logits over the vocab.

  With `embed_dim=0` the input is one-hot, as in char-rnn; the first layer's input
  projection is then a row gather of its W_x rather than a matmul. Dropout (rate
  `dropout`) is applied to each layer's output, i.e. between layers and before the
  output projection, never on the recurrent connection. `recurrence` picks how
  the layers run ('auto', 'kernel', 'scan' or 'reference', see
  `rnnlm.model.recurrence`); all give the same values. `compute_dtype` ('float32' or
  'bfloat16') is the dtype of the matmuls and activations; parameters, the carried
  state, the logits' softmax and the loss stay float32.
  """

  def __init__(self, vocab_size: int, *, cell: str = 'lstm', hidden_size: int = 256,
               num_layers: int = 2, embed_dim: int = 0, dropout: float = 0.0,
               unroll: int = 1, recurrence: str = 'auto', compute_dtype: str = 'float32',
               rngs: nnx.Rngs):
    cells.get_spec(cell)  # Validates the name.
    self.compute_dtype = jnp.dtype(compute_dtype)
    self.vocab_size = vocab_size
    self.cell = cell
    self.hidden_size = hidden_size
    self.num_layers = num_layers
    self.embed_dim = embed_dim
    self.unroll = unroll
    self.recurrence = recurrence_lib.resolve(recurrence, cell, hidden_size, self.compute_dtype)
    self.embed = nnx.Embed(vocab_size, embed_dim, rngs=rngs) if embed_dim > 0 else None
    in_dims = [embed_dim if embed_dim > 0 else vocab_size] + [hidden_size] * (num_layers - 1)
    self.layers = nnx.List([
        RecurrentLayer(cell, d, hidden_size, one_hot_input=(i == 0 and embed_dim == 0), rngs=rngs)
        for i, d in enumerate(in_dims)])
    self.dropout = dropout
    self.head = nnx.Linear(hidden_size, vocab_size, rngs=rngs)

  def initial_carry(self, batch_size: int) -> ModelCarry:
    return tuple(cells.zero_carry(self.cell, batch_size, self.hidden_size)
                 for _ in range(self.num_layers))

  def _input(self, tokens: jax.Array) -> jax.Array | recurrence_lib.Tokens:
    """The first layer's input for tokens [T, B], in the compute dtype."""
    dtype = self.compute_dtype
    w_x = self.layers[0].W_x[...].astype(dtype)
    if self.embed is None:  # One-hot: the projection is a row of W_x.
      return recurrence_lib.Tokens(w_x, tokens)
    table = self.embed.embedding[...].astype(dtype)
    if self.vocab_size <= tokens.size:
      # An embedding followed by a linear map is a lookup in their product:
      # one [V, E] x [E, G*H] matmul instead of a [T*B, E] x [E, G*H] one.
      return recurrence_lib.Tokens(table @ w_x, tokens)
    return table[tokens]

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
    deterministic = dropout_key is None
    keys = ([None] * self.num_layers if deterministic
            else jax.random.split(dropout_key, self.num_layers))
    dtype = self.compute_dtype
    cast = lambda tree, d: jax.tree.map(lambda a: a.astype(d), tree)
    x = self._input(tokens.T)  # Time-major inside: [T, B].
    new_carry = []
    for layer, layer_carry, key in zip(self.layers, carry, keys):
      x, layer_carry = recurrence_lib.layer(self.recurrence, self.cell,
                                            cast(layer.weights(), dtype), x,
                                            cast(layer_carry, dtype), unroll=self.unroll)
      x = dropout_lib.dropout(x, self.dropout, key, batch_axis=1)  # x: [T, B, H].
      # The state carried between windows stays float32, as the parameters do.
      new_carry.append(cast(layer_carry, jnp.float32))
    logits = recurrence_lib.dense(self.recurrence, x, self.head.kernel[...].astype(dtype))
    logits = logits.astype(jnp.float32) + self.head.bias[...]  # Softmax and loss in float32.
    return jnp.swapaxes(logits, 0, 1), tuple(new_carry)

  def step(self, token: jax.Array, carry: ModelCarry) -> tuple[jax.Array, ModelCarry]:
    """One character for sampling: token [batch] -> (logits [batch, vocab], carry)."""
    logits, carry = self(token[:, None], carry)
    return logits[:, 0], carry


def from_config(config, vocab_size: int) -> nnx.Module:
  """The model that `config.model` describes (a CharLM, or a CharTransformer for
  `arch='transformer'`), initialised from `config.seed`."""
  m = config.model
  if m.get('arch', 'rnn') == 'transformer':
    from rnnlm.model.transformer import CharTransformer
    return CharTransformer(vocab_size, hidden_size=m.hidden_size, num_layers=m.num_layers,
                           num_heads=m.num_heads, context_length=m.context_length,
                           positions=m.positions, dropout=m.dropout,
                           compute_dtype=m.get('compute_dtype', 'float32'),
                           context_states=m.get('context_states', 'recompute'),
                           rngs=nnx.Rngs(config.seed))
  return CharLM(vocab_size, cell=m.cell, hidden_size=m.hidden_size, num_layers=m.num_layers,
                embed_dim=m.embed_dim, dropout=m.dropout, unroll=m.unroll,
                recurrence=m.recurrence, compute_dtype=m.get('compute_dtype', 'float32'),
                rngs=nnx.Rngs(config.seed))


def count_params(model: nnx.Module) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
