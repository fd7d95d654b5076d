"""What the model's errors are: the error analysis of Karpathy, Johnson and Fei-Fei (2015).

An error is a character whose true value gets probability under 0.5 from the model.
The paper peels the errors away with a sequence of oracles, each removing the errors it
would fix that the oracles before it left; what no oracle fixes is "the rest". As we
read its section 4.4, and as computed here:

  n-gram          some n-gram model of order 1 to 9, trained on the same train split,
                  gives the true character probability 0.5 or more;
  dynamic memory  the character is in a word, from its second letter on, that appears
                  (as a substring) in the `memory_window` characters before the word
                  (the paper's example: the second "Mary" of "Jon yelled at Mary but
                  Mary couldn't hear him"; a model that copied from its recent input
                  would get it);
  rare words      the character is in a word (a run of letters) seen fewer than
                  `rare_below` times in the training text;
  word starts     the character is the first letter of a word;
  new line        the true character is a newline;
  punctuation     the true character is punctuation (ASCII, not a letter, digit or
                  space);
  the rest        none of the above.

`oracle_breakdown` returns the count and the share of all errors each removes, in that
order; the shares sum to 1.
"""

from __future__ import annotations

import collections
import re
import string

import numpy as np

ORACLES = ('n-gram', 'dynamic memory', 'rare words', 'word starts', 'new line',
           'punctuation', 'the rest')
ERROR_BELOW = 0.5  # The model errs where the truth gets less probability than this.
_WORD = re.compile(r'[A-Za-z]+')
_PUNCTUATION = frozenset(string.punctuation)


def word_counts(train_text: str) -> collections.Counter:
  return collections.Counter(_WORD.findall(train_text))


def in_recent_word(text: str, window: int) -> np.ndarray:
  """[len(text)] bool: the position is in a word, past its first letter, and the word
  occurs in the `window` characters before the word starts."""
  out = np.zeros(len(text), bool)
  for m in _WORD.finditer(text):
    if m.group() in text[max(0, m.start() - window):m.start()]:
      out[m.start() + 1:m.end()] = True
  return out


def oracle_masks(text: str, ngram_probs: np.ndarray, counts: collections.Counter, *,
                 max_ngram: int = 9, memory_window: int = 1000,
                 rare_below: int = 10) -> dict[str, np.ndarray]:
  """One [len(text)] bool mask per oracle (before the sequence is applied).

  ngram_probs: [orders, len(text)] probability each n-gram (order 1, 2, ...) gives the
  character at each position.
  """
  n = len(text)
  in_rare, word_start = np.zeros(n, bool), np.zeros(n, bool)
  for m in _WORD.finditer(text):
    word_start[m.start()] = True
    if counts[m.group()] < rare_below:
      in_rare[m.start():m.end()] = True
  chars = np.array(list(text)) if n else np.zeros(0, str)
  return {
      'n-gram': (ngram_probs[:max_ngram] >= ERROR_BELOW).any(axis=0),
      'dynamic memory': in_recent_word(text, memory_window),
      'rare words': in_rare,
      'word starts': word_start,
      'new line': chars == '\n',
      'punctuation': np.isin(chars, list(_PUNCTUATION)),
  }


def oracle_breakdown(text: str, model_prob: np.ndarray, ngram_probs: np.ndarray,
                     counts: collections.Counter, **kwargs) -> dict:
  """The paper's error breakdown (module docstring) over positions 1.. of `text`.

  model_prob: [len(text)] the model's probability of the character at each position
  (position 0, which has no context, is left out).
  """
  errors = np.asarray(model_prob) < ERROR_BELOW
  errors[0] = False
  masks = oracle_masks(text, ngram_probs, counts, **kwargs)
  left = errors.copy()
  total = max(int(errors.sum()), 1)
  rows = []
  for name in ORACLES:
    removed = left & masks[name] if name in masks else left.copy()
    left &= ~removed
    rows.append({'oracle': name, 'errors': int(removed.sum()),
                 'share': float(removed.sum() / total)})
  return {'characters': len(text) - 1, 'errors': int(errors.sum()),
          'error_rate': float(errors.sum() / max(len(text) - 1, 1)), 'oracles': rows}
