"""Features of a text computed from the text alone, one value per character.

Each is a plain function `text -> np.ndarray [len(text)]`, the value describing
the position *after reading* that character (what a cell that has just read it
could know). Counts are float32; on/off features are bool.

  line_position    characters since the last newline (0 on the newline itself)
  inside_quotes    between an opening and a closing double quote (on the quotes too)
  inside_comment   inside a C comment, /* ... */ or // to the end of the line
  inside_string    inside a C string or character literal ("..." or '...', escapes
                   honoured, not inside comments)
  paren_depth      ( ) nesting depth, brackets inside C comments and literals ignored
  brace_depth      { } nesting depth, likewise
  bracket_depth    [ ] nesting depth, likewise (stage directions in the plays)
  indent_depth     columns of leading whitespace of the current line (tab = 8)
  inside_if        in a C `if` and its condition, from the `i` to the condition's
                   closing parenthesis (the 2015 paper's if-statement cell; not in
                   comments or literals)
  speaker_line     on a line that names a speaker in a play ("KING LEAR." alone)
  line_end_near    the next newline is within 5 characters (ahead: the text
                   decides it, a cell can only anticipate it)
  vowel            the character is a vowel (a simple per-character baseline)
"""

from __future__ import annotations

import functools
import re

import numpy as np

# name -> 'count' (scored by Pearson r) or 'binary' (scored by ROC AUC).
KINDS = {'line_position': 'count', 'inside_quotes': 'binary', 'inside_comment': 'binary',
         'inside_string': 'binary', 'paren_depth': 'count', 'brace_depth': 'count',
         'bracket_depth': 'count', 'indent_depth': 'count', 'inside_if': 'binary',
         'speaker_line': 'binary',
         'line_end_near': 'binary', 'vowel': 'binary'}


def line_position(text: str) -> np.ndarray:
  out = np.zeros(len(text), np.float32)
  pos = 0
  for i, ch in enumerate(text):
    pos = 0 if ch == '\n' else pos + 1
    out[i] = pos
  return out


def inside_quotes(text: str) -> np.ndarray:
  out = np.zeros(len(text), bool)
  inside = False
  for i, ch in enumerate(text):
    if ch == '"':
      out[i] = True  # Both quote characters belong to the quotation.
      inside = not inside
    else:
      out[i] = inside
  return out


@functools.lru_cache(maxsize=1)  # Five features read it: lex the text once.
def _c_lexical_states(text: str) -> tuple[np.ndarray, np.ndarray]:
  """(in_comment, in_literal) per character, by a small C lexer (read-only arrays)."""
  n = len(text)
  comment = np.zeros(n, bool)
  literal = np.zeros(n, bool)
  state, quote, i = 'code', '', 0
  while i < n:
    ch = text[i]
    nxt = text[i + 1] if i + 1 < n else ''
    if state == 'code':
      if ch == '/' and nxt == '*':
        comment[i:i + 2] = True
        state, i = 'block', i + 2
        continue
      if ch == '/' and nxt == '/':
        comment[i:i + 2] = True
        state, i = 'line', i + 2
        continue
      if ch in '"\'':
        literal[i] = True
        state, quote = 'literal', ch
    elif state == 'block':
      comment[i] = True
      if ch == '*' and nxt == '/':
        comment[i + 1] = True
        state, i = 'code', i + 2
        continue
    elif state == 'line':
      if ch == '\n':
        state = 'code'
      else:
        comment[i] = True
    else:  # literal
      literal[i] = True
      if ch == '\\' and nxt and nxt != '\n':
        literal[i + 1] = True
        i += 2
        continue
      if ch == quote or ch == '\n':  # An unterminated literal ends at the line.
        state = 'code'
    i += 1
  comment.flags.writeable = literal.flags.writeable = False
  return comment, literal


def inside_comment(text: str) -> np.ndarray:
  return _c_lexical_states(text)[0].copy()


def inside_string(text: str) -> np.ndarray:
  return _c_lexical_states(text)[1].copy()


def _depth(text: str, opener: str, closer: str) -> np.ndarray:
  comment, literal = _c_lexical_states(text)
  out = np.zeros(len(text), np.float32)
  depth = 0
  for i, ch in enumerate(text):
    if not (comment[i] or literal[i]):
      if ch == opener:
        depth += 1
      elif ch == closer:
        depth = max(depth - 1, 0)
    out[i] = depth
  return out


def paren_depth(text: str) -> np.ndarray:
  return _depth(text, '(', ')')


def brace_depth(text: str) -> np.ndarray:
  return _depth(text, '{', '}')


def bracket_depth(text: str) -> np.ndarray:
  return _depth(text, '[', ']')


def indent_depth(text: str) -> np.ndarray:
  out = np.zeros(len(text), np.float32)
  start = 0
  for line in text.split('\n'):
    col = 0
    for ch in line:
      if ch == ' ':
        col += 1
      elif ch == '\t':
        col = (col // 8 + 1) * 8
      else:
        break
    out[start:start + len(line) + 1] = col  # The line and its newline.
    start += len(line) + 1
  return out[:len(text)]


_IF = re.compile(r'\bif\s*\(')


def inside_if(text: str) -> np.ndarray:
  comment, literal = _c_lexical_states(text)
  code = ~(comment | literal)
  out = np.zeros(len(text), bool)
  for m in _IF.finditer(text):
    start = m.start()
    if not code[start] or (start and text[start - 1] in '_#'):  # `_if(`, `#if (`: not C's if.
      continue
    depth, i = 0, m.end() - 1  # At the condition's opening parenthesis.
    while i < len(text):
      if code[i]:
        depth += text[i] == '('
        depth -= text[i] == ')'
        if depth == 0:
          break
      i += 1
    out[start:i + 1] = True
  return out


_SPEAKER = re.compile(r"^[A-Z][A-Za-z']*(?: [A-Za-z][A-Za-z']*){0,3}\.$")


def speaker_line(text: str) -> np.ndarray:
  out = np.zeros(len(text), bool)
  start = 0
  for line in text.split('\n'):
    if _SPEAKER.match(line.strip()):
      out[start:start + len(line)] = True
    start += len(line) + 1
  return out


def line_end_near(text: str, within: int = 5) -> np.ndarray:
  out = np.zeros(len(text), bool)
  next_newline = None
  for i in range(len(text) - 1, -1, -1):
    if next_newline is not None and 0 < next_newline - i <= within:
      out[i] = True
    if text[i] == '\n':
      next_newline = i
  return out


def vowel(text: str) -> np.ndarray:
  return np.array([ch in 'aeiouAEIOU' for ch in text], bool)


FEATURES = {name: globals()[name] for name in KINDS}


def compute(text: str, names=None) -> dict[str, np.ndarray]:
  """The named features (default: all) of `text`."""
  return {name: FEATURES[name](text) for name in (names or KINDS)}
