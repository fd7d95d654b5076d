"""Sampling text from a CharLM: one jitted `lax.scan` over the generated characters."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rnnlm.data import Vocab
from rnnlm.errors import UserError
from rnnlm.model import CharLM


def check_sampling_args(temperature: float, top_k: int, top_p: float, length: int,
                        num_samples: int) -> None:
  if not temperature > 0:
    raise UserError(f'temperature must be > 0 (got {temperature}); use --argmax for'
                    ' greedy decoding')
  if top_k < 0:
    raise UserError(f'top_k must be >= 0 (got {top_k}); 0 turns it off')
  if not 0 < top_p <= 1:
    raise UserError(f'top_p must be in (0, 1] (got {top_p}); 1 turns it off')
  if length < 0 or num_samples < 1:
    raise UserError('length must be >= 0 and num_samples >= 1')


def filter_logits(logits: jax.Array, top_k: int, top_p: float) -> jax.Array:
  """Sets logits outside the top-k / nucleus (top-p) set to -inf. logits [N, V]."""
  neg_inf = jnp.finfo(logits.dtype).min
  if top_k > 0 and top_k < logits.shape[-1]:
    kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits < kth, neg_inf, logits)
  if top_p < 1.0:
    sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
    probs = jax.nn.softmax(sorted_logits, axis=-1)
    # Keep a token when the probability mass before it is below top_p: the
    # smallest set whose mass reaches top_p (the most likely token always stays).
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    keep = mass_before < top_p
    cutoff = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < cutoff, neg_inf, logits)
  return logits


@functools.partial(jax.jit, static_argnames=('graphdef', 'length', 'top_k', 'top_p', 'argmax'))
def _generate(graphdef, params, prime: jax.Array, key: jax.Array, temperature: jax.Array,
              *, length: int, top_k: int, top_p: float, argmax: bool) -> jax.Array:
  """prime [N, P] (P >= 1) -> generated ids [N, length]."""
  model = nnx.merge(graphdef, params)
  n = prime.shape[0]
  carry = model.initial_carry(n)
  if prime.shape[1] > 1:  # Run all but the last prime char through the model at once.
    _, carry = model(prime[:, :-1], carry)

  def body(state, key_t):
    carry, token = state
    logits, carry = model.step(token, carry)
    if argmax:
      nxt = jnp.argmax(logits, axis=-1)
    else:
      logits = filter_logits(logits / temperature, top_k, top_p)
      nxt = jax.random.categorical(key_t, logits, axis=-1)
    nxt = nxt.astype(token.dtype)
    return (carry, nxt), nxt

  keys = jax.random.split(key, length)
  _, out = jax.lax.scan(body, (carry, prime[:, -1]), keys)
  return out.T


def generate_ids(model: CharLM, prime_ids: np.ndarray, *, length: int, num_samples: int = 1,
                 seed: int = 0, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0, argmax: bool = False) -> np.ndarray:
  """Generates `length` ids after `prime_ids` for each of `num_samples` streams.

  Returns:
    int32 [num_samples, length] (the prime not included).
  """
  check_sampling_args(temperature, top_k, top_p, length, num_samples)
  prime_ids = np.asarray(prime_ids, dtype=np.int32)
  if prime_ids.ndim != 1 or len(prime_ids) == 0:
    raise UserError('the prime must be at least one character')
  if length == 0:
    return np.zeros((num_samples, 0), np.int32)
  graphdef, params = nnx.split(model)
  prime = jnp.broadcast_to(jnp.asarray(prime_ids), (num_samples, len(prime_ids)))
  out = _generate(graphdef, params, prime, jax.random.key(seed),
                  jnp.float32(temperature), length=length, top_k=top_k,
                  top_p=float(top_p), argmax=argmax)
  return np.asarray(out)


def generate_text(model: CharLM, vocab: Vocab, prime: str, *, length: int,
                  num_samples: int = 1, **kwargs) -> list[str]:
  """Prime text + generated text, one string per sample.

  Raises:
    UserError: the prime is empty or has characters outside the vocabulary.
  """
  if not prime:
    raise UserError('the prime is empty; give at least one character, e.g. --prime="\\n"')
  unknown = vocab.unknown_chars(prime)
  if unknown:
    raise UserError(
        f'the prime has characters not in the vocabulary: {", ".join(map(repr, unknown))};'
        ' use only characters of the training corpus')
  ids = generate_ids(model, vocab.encode(prime), length=length, num_samples=num_samples,
                     **kwargs)
  return [prime + vocab.decode(row) for row in ids]
