"""One self-contained HTML page for looking inside a model: no server, no network.

The page holds the text, the chosen cells' activations (int8), the per-character
loss and the top guesses as JSON inside a <script type="application/json"> block
whose <, > and & are escaped as \\u003c, \\u003e and \\u0026, so no text can close
the block or inject markup; `page.js` puts the text on the page through
textContent only.
"""

from __future__ import annotations

import json
import pathlib
from typing import Sequence

import numpy as np

from rnnlm.studies.inside.scores import CellScore

_HERE = pathlib.Path(__file__).parent


def _safe_json(obj) -> str:
  return (json.dumps(obj, ensure_ascii=False, separators=(',', ':'))
          .replace('<', '\\u003c').replace('>', '\\u003e').replace('&', '\\u0026')
          .replace('\u2028', '\\u2028').replace('\u2029', '\\u2029'))


def page_data(title: str, meta: str, text: str, states: dict, loss: np.ndarray,
              top_ids: np.ndarray, top_probs: np.ndarray, vocab_chars: Sequence[str],
              top_cells: dict[str, list[CellScore]], baselines: dict[str, float]) -> dict:
  """The page's JSON: the text, per-character loss [len - 1] and top guesses, and
  for each feature its top cells with their activations over the text."""
  n = len(text)
  cells, index, features = [], {}, []
  for feature, ranked in top_cells.items():
    entries = []
    for c in ranked:
      key = (c.layer, c.name, c.unit)
      if key not in index:
        values = np.asarray(states[(c.layer, c.name)][:n, c.unit], np.float32)
        scale = float(np.max(np.abs(values))) or 1.0
        index[key] = len(cells)
        cells.append({'cell': c.cell, 'min': round(float(values.min()), 3),
                      'max': round(float(values.max()), 3),
                      'values': np.round(values / scale * 127).astype(int).tolist()})
      entries.append({'index': index[key], 'cell': c.cell, 'score': f'{c.score:.3f}'})
    kind = ranked[0].kind if ranked else 'count'
    features.append({'name': feature, 'measure': 'r' if kind == 'count' else 'AUC',
                     'baseline': f'{baselines.get(feature, float("nan")):.2f}',
                     'cells': entries})
  top = [[[vocab_chars[int(i)], round(float(p), 4)] for i, p in zip(ids, probs)]
         for ids, probs in zip(top_ids[:n], top_probs[:n])]
  return {'title': title, 'meta': meta, 'text': text, 'features': features, 'cells': cells,
          'loss': [round(float(x), 3) for x in loss[:n - 1]], 'top': top}


def render(data: dict) -> str:
  """The HTML page for `page_data`'s output."""
  css = (_HERE / 'page.css').read_text()
  js = (_HERE / 'page.js').read_text()
  return f'''<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rnnlm: inside a model</title>
<style>
{css}</style>
</head>
<body>
<h1 id="title"></h1>
<div id="meta"></div>
<div id="controls"><label for="cell">Cell:</label> <select id="cell"></select><span id="cellinfo"></span></div>
<div id="text"></div>
<div class="strip-label">Loss of each character (darker: higher, up to 5 nats)</div>
<div id="loss"></div>
<div id="tip"></div>
<script type="application/json" id="rnnlm-data">{_safe_json(data)}</script>
<script>
{js}</script>
</body>
</html>
'''


def write(path: str, data: dict) -> str:
  with open(path, 'w', encoding='utf-8') as f:
    f.write(render(data))
  return path
