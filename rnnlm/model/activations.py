"""A trained model run over any text, keeping what happens inside at every character.

`run_over_text` feeds a text through a `CharLM` one character stream (batch 1),
window by window with the state carried, on the plain pure-JAX recurrence
(`cells.step_activations`), and returns per character: each layer's named
activations (gates after their nonlinearity, h, and the LSTM's c), the model's
probability of the actual next character, its loss in nats and its top-k guesses.
The logits are those of the model's own forward pass (a test checks it).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rnnlm.model import cells
from rnnlm.model import recurrence
from rnnlm.errors import UserError
from rnnlm.model import CharLM


@dataclasses.dataclass
class Activations:
  """What a model did at each of N characters of a text.

  Attributes:
    tokens: [N] int32, the text's ids.
    states: {(layer, name): [N, H] float16}, the activation after reading
      character t; names are the cell's gates and its carry ('h', 'c').
      Empty when the run kept no states.
    next_prob: [N - 1] float32, the probability given to character t + 1 after
      reading characters 0..t.
    top_ids: [N, k] int32 and top_probs [N, k] float32: the k likeliest next
      characters after reading character t.
  """
  tokens: np.ndarray
  states: dict
  next_prob: np.ndarray
  top_ids: np.ndarray
  top_probs: np.ndarray

  @property
  def loss_nats(self) -> np.ndarray:
    """[N - 1] cross-entropy of each next character."""
    return -np.log(np.maximum(self.next_prob, 1e-30))

  def names(self) -> list[tuple[int, str]]:
    return list(self.states)


@functools.partial(jax.jit, static_argnames=('graphdef', 'keep_states', 'top_k'))
def _window(graphdef, params, tokens, carry, *, keep_states: bool, top_k: int):
  """tokens [T] -> (carry, states {(layer, name): [T, H]}, log-probs [T, V] top-k)."""
  model = nnx.merge(graphdef, params)
  x = model._input(tokens[:, None])  # [T, B=1]: the model's own first-layer input.
  x = (cells.project_tokens({'W_x': x.table}, x.ids) if isinstance(x, recurrence.Tokens)
       else cells.matmul(x, model.layers[0].W_x[...]))
  states, new_carry = {}, []
  for i, layer in enumerate(model.layers):
    w = layer.weights()
    xp = x if i == 0 else cells.matmul(x, w['W_x'])

    def body(c, xp_t, w=w):
      c, acts = cells.step_activations(model.cell, w, c, xp_t)
      return c, acts
    c, acts = jax.lax.scan(body, carry[i], xp)
    new_carry.append(c)
    x = acts['h']
    if keep_states:
      states.update({(i, k): v[:, 0].astype(jnp.float16) for k, v in acts.items()})
  logits = cells.matmul(x, model.head.kernel[...]) + model.head.bias[...]  # [T, 1, V]
  logp = jax.nn.log_softmax(logits[:, 0].astype(jnp.float32), axis=-1)
  next_logp = jnp.take_along_axis(logp[:-1], tokens[1:, None], axis=1)[:, 0]
  top_logp, top_ids = jax.lax.top_k(logp, top_k)
  return tuple(new_carry), states, logp[-1], next_logp, top_ids, jnp.exp(top_logp)


def run_over_text(model: CharLM, tokens: np.ndarray, *, keep_states: bool = True,
                  window: int = 2048, top_k: int = 5, memmap_dir: str | None = None
                  ) -> Activations:
  """Runs `model` over `tokens` [N] from a zero state, with the state carried.

  Args:
    model: a trained (or freshly initialised) CharLM; dropout off.
    tokens: [N] int token ids, N >= 2.
    keep_states: keep every layer's activations (else only the predictions).
    window: characters per jitted call; memory on the device is bounded by it.
    top_k: how many next-character guesses to keep per character.
    memmap_dir: write the states as .npy memmaps there instead of holding them in
      memory (for megabytes of text).

  Returns:
    `Activations`.
  """
  if not hasattr(model, 'cell'):
    raise UserError('looking inside reads the cells of a recurrent model; this run is a'
                    ' transformer (model.arch=transformer)')
  tokens = np.asarray(tokens, np.int32)
  n = len(tokens)
  if n < 2:
    raise ValueError('the text needs at least two characters (one to predict)')
  graphdef, params = nnx.split(model)
  carry = model.initial_carry(1)
  states: dict = {}
  next_prob = np.empty(n - 1, np.float32)
  top_ids = np.empty((n, top_k), np.int32)
  top_probs = np.empty((n, top_k), np.float32)
  prev_logp = None  # The last character's log-probabilities of the previous window.
  for start in range(0, n, window):
    chunk = tokens[start:start + window]  # The last one is shorter: one more compile.
    carry, st, last_logp, nlp, ids, probs = _window(
        graphdef, params, jnp.asarray(chunk), carry, keep_states=keep_states, top_k=top_k)
    m = len(chunk)
    if prev_logp is not None:
      next_prob[start - 1] = float(np.exp(prev_logp[tokens[start]]))
    next_prob[start:start + m - 1] = np.exp(np.asarray(nlp)[:m - 1])
    top_ids[start:start + m] = np.asarray(ids)[:m]
    top_probs[start:start + m] = np.asarray(probs)[:m]
    prev_logp = np.asarray(last_logp)
    for key, value in st.items():
      if key not in states:
        shape = (n, value.shape[-1])
        if memmap_dir:
          os.makedirs(memmap_dir, exist_ok=True)
          path = os.path.join(memmap_dir, f'layer{key[0]}_{key[1]}.npy')
          states[key] = np.lib.format.open_memmap(path, 'w+', np.float16, shape)
        else:
          states[key] = np.empty(shape, np.float16)
      states[key][start:start + m] = np.asarray(value)[:m]
  return Activations(tokens, states, next_prob, top_ids, top_probs)
