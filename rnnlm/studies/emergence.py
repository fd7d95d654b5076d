"""Measures of structure in generated text, each a plain function of strings.

Prose (Shakespeare):
  `word_validity`      share of generated words that occur in the training text;
  `mean_word_length`   against the corpus's own;
  `play_layout_share`  share of blocks laid out as in the plays (speaker line, speech).
Code (C):
  `bracket_balance`    share of (), [], {} that are matched in order;
  `quote_balance`      share of lines whose double quotes pair up;
  `c_function_parse_rate`  share of function-shaped chunks tree-sitter's C grammar
                       parses without ERROR or MISSING nodes (needs tree-sitter).
Both:
  `CharNGram.bits_per_char`  bits per character under an n-gram model of the
                       training text: lower means more corpus-like.

`measure` computes those that apply to a text. The runs that produce the texts
(an emergence run, a sweep's trials) are in `rnnlm.studies.emergence_runs`.
"""

from __future__ import annotations

import collections
import math
import re

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def words(text: str) -> list[str]:
  """Alphabetic words (with inner apostrophes), as written."""
  return _WORD.findall(text)


def word_set(text: str) -> set[str]:
  """Lower-cased vocabulary of a text, for `word_validity`."""
  return {w.lower() for w in words(text)}


def word_validity(text: str, known_words: set[str]) -> float:
  """Share of the words of `text` that are in `known_words` (case-insensitive).

  The last word is left out when the text ends inside it (a cut-off word is no
  evidence either way). NaN for a text with no words.
  """
  ws = words(text)
  if ws and text and text[-1].isalpha():
    ws = ws[:-1]
  if not ws:
    return float('nan')
  return sum(w.lower() in known_words for w in ws) / len(ws)


def mean_word_length(text: str) -> float:
  ws = words(text)
  return sum(map(len, ws)) / len(ws) if ws else float('nan')


# A speaker line in the plays: "Kent.", "First Lord.", "KING HENRY.", "Lady Macbeth."
_SPEAKER = re.compile(r"^[A-Z][A-Za-z']*(?: [A-Za-z][A-Za-z']*){0,3}\.$")
_DIRECTION = re.compile(r'^\s*\[.*\]\s*$|^(ACT|Scene|SCENE) ')


def play_layout_share(text: str) -> float:
  """Share of blank-line-separated blocks laid out as in the plays.

  A block follows the layout when it is a speaker line followed by at least one
  line of speech, or a stage direction ("[Exit.]") or act/scene heading. The last
  block is left out (a sample usually stops inside it). NaN with no whole block.
  """
  blocks = [b for b in re.split(r'\n\s*\n', text) if b.strip()]
  if text and not text.endswith('\n\n'):
    blocks = blocks[:-1]
  if not blocks:
    return float('nan')
  ok = 0
  for b in blocks:
    lines = [l for l in b.strip('\n').split('\n')]
    if _SPEAKER.match(lines[0].strip()) and len(lines) >= 2 and lines[1].strip():
      ok += 1
    elif all(_DIRECTION.match(l) for l in lines) or re.fullmatch(r'\s*\[[^\]]*\]\s*', b):
      ok += 1  # Stage directions (one line each, or one spanning lines) and headings.
  return ok / len(blocks)


# ----------------------------------------------------------------------------
# Code


_PAIRS = {')': '(', ']': '[', '}': '{'}


def _strip_c_literals(text: str) -> str:
  """Removes comments, string and char literals, so brackets inside them don't count."""
  return re.sub(r'/\*.*?(\*/|$)|//[^\n]*|"(\\.|[^"\\\n])*("|$)|\'(\\.|[^\'\\\n])*(\'|$)',
                ' ', text, flags=re.S | re.M)


def bracket_balance(text: str, strip_literals: bool = True) -> float:
  """Share of bracket characters that are matched by a partner of the right kind.

  A stack walk: a closer matching the top opener pairs both; a closer that does
  not, and every opener left open at the end, count as unmatched. Brackets inside
  comments, strings and char literals are ignored. NaN with no brackets.
  """
  if strip_literals:
    text = _strip_c_literals(text)
  stack, total, unmatched = [], 0, 0
  for ch in text:
    if ch in '([{':
      stack.append(ch)
      total += 1
    elif ch in _PAIRS:
      total += 1
      if stack and stack[-1] == _PAIRS[ch]:
        stack.pop()
      else:
        unmatched += 1
  unmatched += len(stack)
  return (total - unmatched) / total if total else float('nan')


def quote_balance(text: str) -> float:
  """Share of lines with double quotes whose (unescaped) double quotes pair up.

  Char literals like '"' and escaped \\" do not count. NaN if no line has one.
  """
  lines_with, balanced = 0, 0
  for line in text.split('\n'):
    line = re.sub(r"'(\\.|[^'\\])'", '', line.replace('\\\\', ''))
    n = len(re.findall(r'(?<!\\)"', line))
    if n:
      lines_with += 1
      balanced += n % 2 == 0
  return balanced / lines_with if lines_with else float('nan')


# A function starts at column 0 with a signature line "... name(...)" (possibly
# continued on following lines) and ends at the first "}" in column 0.
_FUNC_START = re.compile(r'^[A-Za-z_][\w \t\*]*\b[A-Za-z_]\w*\s*\([^;{}]*$', re.M)


def function_chunks(text: str) -> list[str]:
  """Function-shaped chunks of C: a column-0 signature through a column-0 '}'."""
  chunks = []
  for m in _FUNC_START.finditer(text):
    end = re.compile(r'^\}', re.M).search(text, m.end())
    if end is None:
      continue
    body = text[m.start():end.end()]
    if '{' in body:
      chunks.append(body)
  return chunks


def c_function_parse_rate(text: str) -> tuple[float, int]:
  """(share of function chunks that parse cleanly as C, number of chunks).

  Parsed one by one with tree-sitter's C grammar; a chunk is clean when the tree
  has no ERROR or MISSING node. NaN share when there is no chunk.
  """
  import tree_sitter_c
  from tree_sitter import Language, Parser
  parser = Parser(Language(tree_sitter_c.language()))
  chunks = function_chunks(text)
  if not chunks:
    return float('nan'), 0
  ok = sum(not parser.parse(c.encode('utf-8')).root_node.has_error for c in chunks)
  return ok / len(chunks), len(chunks)


# ----------------------------------------------------------------------------
# How corpus-like: a character n-gram model of the training text.


class CharNGram:
  """Interpolated Witten-Bell character n-gram model.

  P(c | h) = (C(h c) + T(h) P(c | h')) / (C(h) + T(h)), where T(h) is the number
  of distinct characters seen after h and h' is h without its first character;
  the order-0 base is add-one over the alphabet (so unseen characters get mass).
  """

  def __init__(self, text: str, order: int = 5):
    if order < 1:
      raise ValueError('order must be >= 1')
    self.order = order
    self.alphabet = sorted(set(text))
    self.counts = [collections.Counter() for _ in range(order)]  # k: contexts of length k
    self.followers = [collections.defaultdict(set) for _ in range(order)]
    self.context_totals = [collections.Counter() for _ in range(order)]
    for k in range(order):
      grams = collections.Counter(text[i:i + k + 1] for i in range(len(text) - k))
      self.counts[k] = grams
      for g, n in grams.items():
        self.context_totals[k][g[:-1]] += n
        self.followers[k][g[:-1]].add(g[-1])

  def prob(self, context: str, c: str) -> float:
    v = len(self.alphabet) + 1  # +1: room for characters never seen.
    p = (self.counts[0].get(c, 0) + 1) / (self.context_totals[0][''] + v)
    for k in range(1, self.order):
      if len(context) < k:
        break
      h = context[len(context) - k:]
      total = self.context_totals[k].get(h, 0)
      if total == 0:
        break
      t = len(self.followers[k][h])
      p = (self.counts[k].get(h + c, 0) + t * p) / (total + t)
    return p

  def bits_per_char(self, text: str) -> float:
    """Mean -log2 P(c_i | previous order-1 chars) over the text."""
    if not text:
      return float('nan')
    n = self.order - 1
    bits = sum(-math.log2(self.prob(text[max(0, i - n):i], c)) for i, c in enumerate(text))
    return bits / len(text)


def measure(text: str, kind: str, *, known_words: set[str] | None = None,
            ngram: CharNGram | None = None) -> dict:
  """All measures that apply to `kind` ('prose' or 'code') for one sample."""
  out = {'mean_word_length': mean_word_length(text)}
  if known_words is not None:
    out['word_validity'] = word_validity(text, known_words)
  if ngram is not None:
    out['ngram_bpc'] = ngram.bits_per_char(text)
  if kind == 'prose':
    out['layout_share'] = play_layout_share(text)
  elif kind == 'code':
    out['bracket_balance'] = bracket_balance(text)
    out['quote_balance'] = quote_balance(text)
    try:
      out['c_parse_rate'], out['c_functions'] = c_function_parse_rate(text)
    except ImportError:
      out['c_parse_rate'], out['c_functions'] = float('nan'), 0
  else:
    raise ValueError(f'kind must be prose or code, not {kind!r}')
  return out


PROSE_KEYS = ('val_bpc', 'ngram_bpc', 'word_validity', 'mean_word_length', 'layout_share')
CODE_KEYS = ('val_bpc', 'ngram_bpc', 'bracket_balance', 'quote_balance', 'c_parse_rate',
             'mean_word_length')
