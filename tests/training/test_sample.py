import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rnnlm import data
from rnnlm.training import sample
from rnnlm.errors import UserError
from rnnlm.model import CharLM

VOCAB = data.Vocab.from_text('abcdefgh \n')


@pytest.fixture(scope='module')
def model():
  return CharLM(len(VOCAB), cell='gru', hidden_size=16, num_layers=2, rngs=nnx.Rngs(3))


def _greedy_by_hand(model, prime_ids, length):
  """Greedy decoding with a Python loop over characters, as an independent reference."""
  carry = model.initial_carry(1)
  logits, carry = model(jnp.asarray(prime_ids)[None], carry)
  out = []
  last = logits[0, -1]
  for _ in range(length):
    nxt = int(jnp.argmax(last))
    out.append(nxt)
    last, carry = model.step(jnp.asarray([nxt]), carry)
    last = last[0]
  return out


def test_same_seed_same_text(model):
  kw = dict(length=60, num_samples=3, temperature=1.0)
  a = sample.generate_text(model, VOCAB, 'abc', seed=7, **kw)
  b = sample.generate_text(model, VOCAB, 'abc', seed=7, **kw)
  c = sample.generate_text(model, VOCAB, 'abc', seed=8, **kw)
  assert a == b and a != c
  assert all(t.startswith('abc') and len(t) == 63 for t in a)
  assert len(set(a)) > 1  # The streams of a batch differ.


def test_argmax_equals_python_loop_and_low_temperature_and_top_k_1(model):
  prime = VOCAB.encode('bad cab')
  want = _greedy_by_hand(model, prime, 30)
  greedy = sample.generate_ids(model, prime, length=30, argmax=True)[0]
  assert greedy.tolist() == want
  cold = sample.generate_ids(model, prime, length=30, temperature=1e-4, seed=1)[0]
  top1 = sample.generate_ids(model, prime, length=30, top_k=1, seed=2)[0]
  assert cold.tolist() == want and top1.tolist() == want


def test_filter_logits_by_hand():
  logits = jnp.log(jnp.array([[0.5, 0.2, 0.15, 0.1, 0.05]]))
  kept = lambda out: np.isfinite(np.asarray(out[0])) & (np.asarray(out[0]) > -1e30)
  assert kept(sample.filter_logits(logits, 2, 1.0)).tolist() == [1, 1, 0, 0, 0]
  # Nucleus 0.6: 0.5 alone is < 0.6, so 0.2 joins; 0.7 reaches it.
  assert kept(sample.filter_logits(logits, 0, 0.6)).tolist() == [1, 1, 0, 0, 0]
  assert kept(sample.filter_logits(logits, 0, 0.5)).tolist() == [1, 0, 0, 0, 0]
  assert kept(sample.filter_logits(logits, 0, 0.86)).tolist() == [1, 1, 1, 1, 0]
  assert kept(sample.filter_logits(logits, 0, 1.0)).tolist() == [1, 1, 1, 1, 1]


def test_top_k_only_draws_from_top_k(model):
  ids = sample.generate_ids(model, VOCAB.encode('a'), length=1, num_samples=200, top_k=2,
                            seed=0)
  logits, _ = model.step(jnp.asarray([VOCAB.encode('a')[0]]), model.initial_carry(1))
  top2 = set(np.argsort(np.asarray(logits[0]))[-2:].tolist())
  assert set(ids[:, 0].tolist()) == top2


@pytest.mark.parametrize('kwargs,match', [
    ({'temperature': 0.0}, 'temperature'), ({'temperature': -1.0}, 'temperature'),
    ({'top_k': -1}, 'top_k'), ({'top_p': 0.0}, 'top_p'), ({'top_p': 1.5}, 'top_p')])
def test_bad_sampling_args(model, kwargs, match):
  with pytest.raises(UserError, match=match):
    sample.generate_text(model, VOCAB, 'a', length=5, **kwargs)


def test_prime_outside_vocab_names_chars(model):
  with pytest.raises(UserError, match=r"'X'.*'z'"):
    sample.generate_text(model, VOCAB, 'aXz', length=5)
