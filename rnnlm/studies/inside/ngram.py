"""Character n-gram baselines with interpolated Kneser-Ney smoothing, n = 1 ... 20.

The model of order n predicts a character from the n - 1 before it:

  P_n(w | h) = max(c(h w) - D, 0) / c(h) + D N1+(h .) / c(h) * P'_{n-1}(w | h')

with h' = h without its first character, c raw counts, N1+(h .) the number of
distinct characters seen after h, D = n1 / (n1 + 2 n2) from the count-of-counts of
that order; an unseen context (c(h) = 0) hands all its mass to the lower order.
The lower orders P' are the same formula on continuation counts (the number of
distinct characters seen before h w) instead of raw counts, down to the
unigram, which is interpolated with the uniform distribution over the vocabulary.
Every model of order 1 ... N is evaluated in one pass: order k's tables are built,
used for every test position, and dropped before order k + 1's.

Counts are kept in sorted numpy tables keyed by a 64-bit polynomial hash of the
n-gram (mod 2^64, a random odd base). Two distinct n-grams of the corpus sharing a
key would merge their counts; with M distinct n-grams of one order that happens
with probability about M^2 / 2^65 (under 1e-6 for the 5M distinct n-grams per
order of a 5 MB corpus). Memory: a few arrays of 8-byte values per training
character for the order being built (about 40 bytes per character: 2 GB for a
50 MB corpus), whatever the maximum order.
"""

from __future__ import annotations

import numpy as np
from absl import logging

_BASE = np.uint64(0x9E3779B97F4A7C15)  # Odd.


def _discount(counts: np.ndarray) -> float:
  n1 = int(np.sum(counts == 1))
  n2 = int(np.sum(counts == 2))
  if n1 == 0:
    return 0.5
  return n1 / (n1 + 2 * n2)


def _grouped(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Unique sorted keys, the sum of `values` and the number of entries per key."""
  order = np.argsort(keys, kind='stable')
  k, v = keys[order], values[order]
  uniq, start, num = np.unique(k, return_index=True, return_counts=True)
  return uniq, np.add.reduceat(v, start) if len(v) else v, num


def _lookup(table: np.ndarray, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
  """values[table == key] for each key; 0 where the key is absent."""
  if len(table) == 0:
    return np.zeros(len(keys), values.dtype)
  idx = np.clip(np.searchsorted(table, keys), 0, len(table) - 1)
  return np.where(table[idx] == keys, values[idx], 0)


class _Level:
  """The counts of one order: contexts of length k, and (context, next) pairs."""

  def __init__(self, pair_keys, ctx_of_pair, pair_counts):
    order = np.argsort(pair_keys)
    self.pairs, self.pair_counts = pair_keys[order], pair_counts[order].astype(np.float64)
    ctx = ctx_of_pair[order]
    self.ctxs, self.ctx_totals, self.ctx_types = _grouped(ctx, self.pair_counts)
    self.discount = _discount(self.pair_counts)

  def interpolation(self, ctx_keys, pair_keys, valid):
    """(alpha, beta) per position: P = alpha + beta * P_lower."""
    c = _lookup(self.pairs, self.pair_counts, pair_keys)
    total = _lookup(self.ctxs, self.ctx_totals, ctx_keys)
    types = _lookup(self.ctxs, self.ctx_types.astype(np.float64), ctx_keys)
    seen = valid & (total > 0)
    safe = np.where(seen, total, 1.0)
    alpha = np.where(seen, np.maximum(c - self.discount, 0.0) / safe, 0.0)
    beta = np.where(seen, self.discount * types / safe, 1.0)
    return alpha, beta


def _hashes(tokens: np.ndarray, max_context: int):
  """Yields (k, ctx_key [N], full_key [N]) for k = 0 .. max_context: at position p
  the hash of tokens[p-k:p] and of tokens[p-k:p+1]; positions p < k are invalid."""
  t = tokens.astype(np.uint64) + np.uint64(1)
  n = len(t)
  ctx = np.zeros(n, np.uint64)
  power = np.uint64(1)
  with np.errstate(over='ignore'):
    for k in range(max_context + 1):
      if k > 0:
        shifted = np.zeros(n, np.uint64)
        shifted[k:] = t[:n - k]
        ctx = ctx + shifted * power  # tokens[p-k] joins the context on the left.
        power = power * _BASE
      yield k, ctx.copy(), ctx * _BASE + t


class KneserNey:
  """Interpolated Kneser-Ney models of orders 1 .. max_order on one training text."""

  def __init__(self, train_tokens: np.ndarray, vocab_size: int, max_order: int = 20):
    self.train = np.asarray(train_tokens)
    self.vocab_size = vocab_size
    self.max_order = max_order

  def _levels(self):
    """Yields (k, raw level, continuation level) for context lengths k = 0 .. max_order - 1."""
    hashes = _hashes(self.train, self.max_order)
    _, prev_ctx, prev_full = next(hashes)
    for k in range(self.max_order):
      _, next_ctx, next_full = next(hashes)  # Order k + 2: for continuation counts.
      valid = np.arange(len(self.train)) >= k
      full, ctx = prev_full[valid], prev_ctx[valid]
      uniq, first, counts = np.unique(full, return_index=True, return_counts=True)
      raw = _Level(uniq, ctx[first], counts)
      # Continuation count of (h, w): distinct characters seen before h w, i.e. the
      # distinct (k + 2)-grams whose suffix is h w.
      longer = np.arange(len(self.train)) >= k + 1
      _, first_long = np.unique(next_full[longer], return_index=True)
      suffix = prev_full[longer][first_long]
      suffix_ctx = prev_ctx[longer][first_long]
      uniq_s, first_s, cont = np.unique(suffix, return_index=True, return_counts=True)
      continuation = _Level(uniq_s, suffix_ctx[first_s], cont)
      yield k, raw, continuation
      prev_ctx, prev_full = next_ctx, next_full

  def next_char_probs(self, tokens: np.ndarray) -> np.ndarray:
    """[max_order, N] probability of tokens[p] under the n-gram model of each order
    n = 1 .. max_order, given the text before p (shorter at the start of the text)."""
    return self.next_char_probs_many([tokens])[0]

  def next_char_probs_many(self, sequences: list[np.ndarray]) -> list[np.ndarray]:
    """`next_char_probs` of several texts, building each order's tables once."""
    seqs = [np.asarray(t) for t in sequences]
    outs = [np.empty((self.max_order, len(t)), np.float64) for t in seqs]
    lowers = [np.full(len(t), 1.0 / self.vocab_size) for t in seqs]  # P'_0: uniform.
    hashes = [_hashes(t, self.max_order - 1) for t in seqs]
    for k, raw, cont in self._levels():
      logging.info('Kneser-Ney: order %d of %d (%d contexts)', k + 1, self.max_order,
                   len(raw.ctxs))
      for out, lower, t, h in zip(outs, lowers, seqs, hashes):
        _, ctx, full = next(h)
        valid = np.arange(len(t)) >= k
        a, b = raw.interpolation(ctx, full, valid)
        out[k] = a + b * lower
        a, b = cont.interpolation(ctx, full, valid)
        lower *= b
        lower += a
    return outs

  def distribution(self, context: np.ndarray, order: int) -> np.ndarray:
    """[V] next-character probabilities after `context` under the model of `order`
    (for checks: one pass per candidate character)."""
    out = np.empty(self.vocab_size)
    for w in range(self.vocab_size):
      seq = np.append(np.asarray(context, np.int64), w)
      out[w] = self.next_char_probs(seq)[order - 1, -1]
    return out


def mean_loss(probs: np.ndarray) -> np.ndarray:
  """[max_order] mean nats per predicted character from `next_char_probs`' output
  (the first character, with no context at all, is not predicted, as for the
  recurrent model)."""
  return -np.log(probs[:, 1:]).mean(axis=1)


def loss_table(model: KneserNey, splits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """{split: [max_order] mean nats per predicted character}."""
  probs = model.next_char_probs_many(list(splits.values()))
  return {name: mean_loss(p) for name, p in zip(splits, probs)}
