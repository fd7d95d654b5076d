"""The scale experiments (`rnnlm.scaling` holds their maths): the cell x depth x
budget comparison of the 2015 paper, and the joint grid over parameters and data.

Both are sweeps (`rnnlm.sweep`: one process per trial, results.csv, resumable),
built from a sweep config whose `sweep.kind` names them, and both end in a
report.md with tables, fits and figures.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import ml_collections
import numpy as np

from rnnlm import corpora
from rnnlm import report
from rnnlm import scaling
from rnnlm import sweep
from rnnlm.errors import UserError

CELL_NAMES = {'rnn': 'RNN', 'lstm': 'LSTM', 'gru': 'GRU'}


def _vocab_size(base: ml_collections.ConfigDict) -> int:
  return len(corpora.get_corpus(base.data).vocab)


def _float(row: dict, key: str) -> float | None:
  v = row.get(key, '')
  return float(v) if v not in ('', None) else None


# ----------------------------------------------------------------------------
# The 2015 comparison


def paper_grid(s: ml_collections.ConfigDict, vocab_size: int, embed_dim: int = 0
               ) -> list[tuple[int, dict]]:
  """(budget, overrides) for every cell x depth x budget x learning rate."""
  grid = []
  for budget in s.budgets:
    for cell in s.cells:
      for layers in s.layers:
        hidden = scaling.hidden_for_budget(cell, layers, vocab_size, budget,
                                           embed_dim=embed_dim, multiple_of=s.hidden_multiple)
        for lr in s.learning_rates:
          grid.append((budget, {'model.cell': cell, 'model.num_layers': layers,
                                'model.hidden_size': hidden, 'train.learning_rate': lr}))
  return grid


def _chosen(rows: Sequence[dict], seed: int = 0) -> dict:
  """{(cell, layers, budget): the finished row of the learning rate with the lowest
  validation loss}, among trials of `seed`."""
  best = {}
  for r in rows:
    if r['status'] != 'done' or int(r['seed']) != seed:
      continue
    key = (r['cell'], int(r['num_layers']), int(r['budget']))
    if key not in best or float(r['best_val_loss']) < float(best[key]['best_val_loss']):
      best[key] = r
  return best


def run_paper_table(config: ml_collections.ConfigDict, sweep_dir: str, command: str = '') -> str:
  """Runs the comparison (then the extra seeds at `seed_budget`) and writes its report."""
  s, base = config.sweep, config.base
  vocab_size = _vocab_size(base)
  grid = paper_grid(s, vocab_size, base.model.embed_dim)
  budgets = {sweep.trial_name(o): b for b, o in grid}
  sweep.run_sweep(base, [o for _, o in grid], sweep_dir, s.trials_at_once)
  # The seeds: each (cell, depth) at the seed budget, at its chosen learning rate.
  rows = _with_budgets(sweep.read_csv(os.path.join(sweep_dir, 'results.csv')), budgets)
  chosen = _chosen(rows)
  seed_grid = []
  for (cell, layers, budget), r in sorted(chosen.items()):
    if budget == s.seed_budget:
      for seed in s.extra_seeds:
        o = {'model.cell': cell, 'model.num_layers': layers,
             'model.hidden_size': int(r['hidden_size']),
             'train.learning_rate': float(r['learning_rate']), 'seed': seed}
        seed_grid.append(o)
        budgets[sweep.trial_name(o)] = budget
  sweep.run_sweep(base, [o for _, o in grid] + seed_grid, sweep_dir, s.trials_at_once)
  with open(os.path.join(sweep_dir, 'budgets.json'), 'w') as f:
    json.dump(budgets, f, indent=2)
  return paper_report(sweep_dir, s, command)


def _with_budgets(rows: list[dict], budgets: dict) -> list[dict]:
  return [dict(r, budget=budgets[r['name']]) for r in rows if r['name'] in budgets]


def _spread(rows: Sequence[dict], seed_budget: int) -> dict:
  """{(cell, layers): [test losses over seeds]} at the seed budget, chosen rates only."""
  out = {}
  for (cell, layers, budget), r in _chosen(rows).items():
    if budget != seed_budget:
      continue
    losses = [float(x['test_loss']) for x in rows
              if x['status'] == 'done' and x['cell'] == cell and int(x['num_layers']) == layers
              and int(x['hidden_size']) == int(r['hidden_size'])
              and float(x['learning_rate']) == float(r['learning_rate'])]
    out[(cell, layers)] = losses
  return out


def findings(table: dict, cells: Sequence[str], layers: Sequence[int], budgets: Sequence[int],
             noise: float) -> list[tuple[str, str, str]]:
  """The paper's four findings checked on `table` {(cell, layers, budget): test loss}.

  `noise` is the typical difference between two seeds; a difference smaller than it
  is not counted either way. Returns (finding, verdict, evidence) rows.
  """
  out = []

  def compare(pairs):
    """(wins, losses, ties) of a over b for pairs (a, b) of losses."""
    wins = sum(a < b - noise for a, b in pairs)
    losses = sum(a > b + noise for a, b in pairs)
    return wins, losses, len(pairs) - wins - losses

  have = lambda *keys: all(k in table for k in keys)
  if 'rnn' in cells:
    pairs = [(table[(c, l, b)], table[('rnn', l, b)]) for c in cells if c != 'rnn'
             for l in layers for b in budgets if have((c, l, b), ('rnn', l, b))]
    w, lo, t = compare(pairs)
    gaps = [b_ - a for a, b_ in pairs]
    out.append(('LSTM and GRU are far better than the vanilla RNN',
                'held' if pairs and w == len(pairs) else 'not held' if pairs else 'not run',
                f'better in {w} of {len(pairs)} same-depth, same-budget pairs (worse {lo},'
                f' within seed spread {t}); mean gap {np.mean(gaps) if gaps else float("nan"):.3f}'
                ' nats'))
  for deeper, shallower, claim in ((2, 1, '2 layers are better than 1'),
                                   (3, 2, 'a third layer gives mixed results')):
    if deeper not in layers or shallower not in layers:
      continue
    pairs = [(table[(c, deeper, b)], table[(c, shallower, b)]) for c in cells for b in budgets
             if have((c, deeper, b), (c, shallower, b))]
    w, lo, t = compare(pairs)
    if deeper == 2:
      verdict = 'held' if pairs and w == len(pairs) else 'partly held' if w > lo else 'not held'
    else:
      verdict = ('held (mixed)' if w and lo or t else
                 'not held: always better' if w == len(pairs) else 'not held: always worse')
    out.append((claim, verdict if pairs else 'not run',
                f'{deeper} layers better in {w} of {len(pairs)} (cell, budget) pairs, worse'
                f' in {lo}, within seed spread in {t}'))
  if 'lstm' in cells and 'gru' in cells:
    diffs, gaps = [], []
    for l in layers:
      for b in budgets:
        if have(('lstm', l, b), ('gru', l, b)):
          diffs.append(abs(table[('lstm', l, b)] - table[('gru', l, b)]))
          if have(('rnn', l, b)):
            gaps.append(table[('rnn', l, b)] - min(table[('lstm', l, b)], table[('gru', l, b)]))
    if diffs:
      close = np.mean(diffs) < 0.25 * np.mean(gaps) if gaps else np.mean(diffs) < 2 * noise
      out.append(('LSTM and GRU are close to each other', 'held' if close else 'not held',
                  f'mean |LSTM - GRU| {np.mean(diffs):.3f} nats against a mean RNN gap of'
                  f' {np.mean(gaps) if gaps else float("nan"):.3f} (held: under a quarter'
                  ' of it)'))
  return out


def paper_report(sweep_dir: str, s: ml_collections.ConfigDict, command: str = '') -> str:
  """Tables laid out like the paper's, the figure, the findings and the seed spread."""
  from rnnlm import plots
  with open(os.path.join(sweep_dir, 'budgets.json')) as f:
    budgets_by_name = json.load(f)
  rows = _with_budgets(sweep.read_csv(os.path.join(sweep_dir, 'results.csv')), budgets_by_name)
  chosen = _chosen(rows)
  table = {k: float(r['test_loss']) for k, r in chosen.items() if r['test_loss'] != ''}
  spread = _spread(rows, s.seed_budget)
  diffs = [max(v) - min(v) for v in spread.values() if len(v) > 1]
  noise = float(np.mean(diffs)) if diffs else 0.0
  budgets = list(s.budgets)
  label = lambda b: f'{b / 1e3:g}k' if b < 1e6 else f'{b / 1e6:g}M'
  lines = [f'# {s.title}', '', *report.made_by(command),
           'Test loss (nats per character) of the best checkpoint of each model, at the'
           ' learning rate with the lowest validation loss. Rows: cell and depth; columns:'
           ' parameter budget.', '']
  body = []
  for c in s.cells:
    for l in s.layers:
      body.append([f'{CELL_NAMES.get(c, c)}, {l} layer{"s" if l > 1 else ""}',
                   *(table.get((c, l, b)) for b in budgets)])
  lines += report.table(["model", *(label(b) for b in budgets)], body)
  lines += ['', 'Parameters, hidden size, chosen learning rate, steps and why each stopped:', '']
  detail = []
  for (c, l, b), r in sorted(chosen.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
    detail.append([label(b), CELL_NAMES.get(c, c), l, r['hidden_size'], r['num_params'],
                   r['learning_rate'], r['best_step'], r['final_step'], r['stopped'],
                   r['best_val_loss'], r['test_loss']])
  lines += report.table(['budget', 'cell', 'layers', 'hidden', 'parameters', 'lr', 'best step',
                         'last step', 'stopped by', 'val loss', 'test loss'], detail, 4)
  lines += ['', '## The findings of the paper, checked', '',
            f'Differences under {noise:.3f} nats (the mean difference between two seeds,'
            ' below) are counted as ties.', '']
  lines += report.table(['finding (Karpathy et al. 2015)', 'here', 'evidence'],
                        [list(f) for f in findings(table, s.cells, s.layers, budgets, noise)])
  if spread:
    lines += ['', f'## Spread over seeds at {label(s.seed_budget)} parameters', '']
    lines += report.table(['cell', 'layers', 'test loss per seed', 'range'],
                          [[CELL_NAMES.get(c, c), l, ', '.join(f'{v:.3f}' for v in vs),
                            max(vs) - min(vs)] for (c, l), vs in sorted(spread.items())], 3)
  failed = [r for r in rows if r['status'] == 'failed']
  if failed:
    lines += ['', 'Failed trials (excluded):', ''] + [f'- {r["name"]}: {r["error"]}'
                                                     for r in failed]
  pending = len(budgets_by_name) - sum(r['status'] == 'done' for r in rows)
  if pending > 0:
    lines += ['', f'{pending} trials have not finished; run the command again to resume.']
  os.makedirs(os.path.join(sweep_dir, 'plots'), exist_ok=True)
  fig = plots.paper_figure(
      [dict(r, test_loss=float(r['test_loss'])) for r in chosen.values() if r['test_loss'] != ''],
      os.path.join(sweep_dir, 'plots', 'loss_vs_params_by_cell.png'))
  lines += ['', f'![loss against parameters](plots/{os.path.basename(fig)})']
  return report.write(os.path.join(sweep_dir, 'report.md'), lines)


def run_from_config(config: ml_collections.ConfigDict, sweep_dir: str, command: str = '') -> str:
  kind = config.sweep.get('kind', 'field')
  if kind == 'paper_table':
    return run_paper_table(config, sweep_dir, command)
  raise UserError(f'unknown sweep.kind {kind!r}; use field or paper_table')
