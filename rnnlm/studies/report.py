"""Markdown for the reports that sweeps, emergence runs and inspections write."""

from __future__ import annotations

import math
from typing import Sequence


class Formatted(str):
  """A table cell already written out (e.g. a loss to fixed decimals): `fmt` keeps it."""


def fmt(value, digits: int = 4) -> str:
  """A table cell: '-' for NaN or None, integers in full (thousands separated, as
  are whole floats from 1000 on), `digits` significant digits for other numbers,
  text as it is."""
  if isinstance(value, Formatted):
    return str(value)
  if value is None or isinstance(value, bool):
    return '-' if value is None else str(value)
  try:
    f = float(value)
  except (TypeError, ValueError):
    return str(value)
  if math.isnan(f):
    return '-'
  if f.is_integer() and (isinstance(value, int) or abs(f) >= 1000):
    return f'{int(f):,}'
  return f'{f:.{digits}g}'


def table(header: Sequence[str], rows: Sequence[Sequence], digits: int = 4) -> list[str]:
  """A markdown table, one line per list item."""
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(fmt(v, digits) for v in row) + ' |' for row in rows]
  return lines


def code_block(text: str) -> list[str]:
  """Text in a fenced block (its own fences defused)."""
  return ['```', text.replace('```', "'''"), '```']


def made_by(command: str) -> list[str]:
  """The 'Made by:' block naming the command that wrote a report ([] for none)."""
  return ['Made by:', '', '```bash', command, '```', ''] if command else []


def write(path: str, lines: Sequence[str]) -> str:
  with open(path, 'w') as f:
    f.write('\n'.join(lines).rstrip('\n') + '\n')
  return path
