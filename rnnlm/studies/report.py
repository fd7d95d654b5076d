"""Markdown for the reports that sweeps, emergence runs and inspections write."""

from __future__ import annotations

import math
import os
import re
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


# A results page may repeat a report's table; a marker line right above it names the
# report (relative to the page), and `copied_tables` / `sync_copied_tables` keep the
# copy equal to the report's table with the same first header cell:
#   <!-- table from results/paper_warpeace/report.md -->
_COPIED = re.compile(r'^<!-- table from (\S+) -->$')


def tables_in(lines: Sequence[str]) -> list[tuple[int, list[str]]]:
  """The markdown tables of a page: (index of the first line, the table's lines)."""
  found, start = [], None
  for i, line in enumerate([*lines, '']):
    if line.startswith('|') and start is None:
      start = i
    elif not line.startswith('|') and start is not None:
      found.append((start, list(lines[start:i])))
      start = None
  return found


def _first_cell(table_lines: Sequence[str]) -> str:
  return table_lines[0].strip('|').split('|')[0].strip()


def copied_tables(page: str) -> list[dict]:
  """Each marked table of `page`: its source, the page's copy and the source's table
  (None where the source file or a table with that first header cell is missing)."""
  with open(page) as f:
    lines = f.read().splitlines()
  starts = dict(tables_in(lines))
  out = []
  for i, line in enumerate(lines):
    m = _COPIED.match(line.strip())
    if not m:
      continue
    copy = starts.get(i + 1)
    if copy is None:
      raise ValueError(f'{page}:{i + 1}: a "table from" marker with no table on the next line')
    source = os.path.join(os.path.dirname(page), m.group(1))
    original = None
    if os.path.exists(source):
      with open(source) as f:
        original = next((t for _, t in tables_in(f.read().splitlines())
                         if _first_cell(t) == _first_cell(copy)), None)
    out.append({'line': i + 2, 'source': source, 'copy': copy, 'original': original})
  return out


def sync_copied_tables(page: str) -> list[str]:
  """Rewrites each marked table of `page` from its source; returns the sources whose
  tables changed."""
  with open(page) as f:
    lines = f.read().splitlines()
  changed = []
  for t in reversed(copied_tables(page)):  # From the end: earlier line numbers hold.
    if t['original'] is None:
      raise ValueError(f'{page}:{t["line"]}: {t["source"]} has no table headed'
                       f' "{_first_cell(t["copy"])}"')
    if t['original'] != t['copy']:
      start = t['line'] - 1
      lines[start:start + len(t['copy'])] = t['original']
      changed.append(t['source'])
  if changed:
    write(page, lines)
  return changed[::-1]
