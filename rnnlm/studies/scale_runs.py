"""The scale experiments (`rnnlm.scaling` holds their maths): the cell x depth x
budget comparison of the 2015 paper, and the joint grid over parameters and data.

Both are sweeps (`rnnlm.sweep`: one process per trial, results.csv, resumable),
built from a sweep config whose `sweep.kind` names them, and both end in a
report.md with tables, fits and figures.
"""

from __future__ import annotations

import json
import math
import os
from typing import Sequence

import ml_collections
import numpy as np

from rnnlm.data import corpora
from rnnlm.studies import report
from rnnlm.studies import scaling
from rnnlm.studies import sweep
from rnnlm.errors import UserError

CELL_NAMES = {'rnn': 'RNN', 'lstm': 'LSTM', 'gru': 'GRU'}


def _vocab_size(base: ml_collections.ConfigDict) -> int:
  return len(corpora.get_corpus(base.data).vocab)


def _float(row: dict, key: str) -> float | None:
  v = row.get(key, '')
  return float(v) if v not in ('', None) else None


def best_at_first_eval(row: dict, eval_every: int) -> bool:
  """A trial whose best validation loss was its first evaluation (it overfit within
  one evaluation interval): its true minimum may lie earlier."""
  return int(row['best_step']) <= eval_every < int(row['final_step'])


def still_improving(row: dict) -> bool:
  """A trial the step cap stopped at its best evaluation so far: not converged."""
  return row['stopped'] == 'num_steps' and row['best_step'] == row['final_step']


# ----------------------------------------------------------------------------
# The 2015 comparison


def resolve_budgets(s: ml_collections.ConfigDict, vocab_size: int, embed_dim: int = 0) -> None:
  """Sets `s.budgets` from `s.budget_lstm_cells` where that is given: the paper's
  budgets are the parameter counts of 1-layer LSTMs of those widths on this vocabulary."""
  cells_ = tuple(s.get('budget_lstm_cells') or ())
  if cells_:
    s.budgets = tuple(scaling.num_params('lstm', 1, h, vocab_size, embed_dim) for h in cells_)
    if s.get('seed_budget_lstm_cells'):
      s.seed_budget = scaling.num_params('lstm', 1, s.seed_budget_lstm_cells, vocab_size,
                                         embed_dim)


def paper_grid(s: ml_collections.ConfigDict, vocab_size: int, embed_dim: int = 0
               ) -> list[tuple[int, dict]]:
  """(budget, overrides) for every cell x depth x budget x learning rate."""
  resolve_budgets(s, vocab_size, embed_dim)
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
  _write_budgets(sweep_dir, budgets)  # So that a report can be written mid-sweep.
  sweep.run_sweep(base, [o for _, o in grid], sweep_dir, s.trials_at_once, s.get('executor'))
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
  sweep.run_sweep(base, [o for _, o in grid] + seed_grid, sweep_dir, s.trials_at_once,
                  s.get('executor'))
  _write_budgets(sweep_dir, budgets)
  return paper_report(sweep_dir, s, command)


def _write_budgets(sweep_dir: str, budgets: dict) -> None:
  os.makedirs(sweep_dir, exist_ok=True)
  with open(os.path.join(sweep_dir, 'budgets.json'), 'w') as f:
    json.dump(budgets, f, indent=2)


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
    if len(losses) > 1:
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
      # Close: under a quarter of the RNN's gap to them, and never less than twice the
      # seed spread (or 0.02 nats while no spread is measured).
      gap = float(np.mean(gaps)) if gaps else 0.0
      limit = max(0.25 * gap, 2 * noise if noise else 0.02)
      out.append(('LSTM and GRU are close to each other',
                  'held' if np.mean(diffs) < limit else 'not held',
                  f'mean abs(LSTM - GRU) {np.mean(diffs):.3f} nats; held if under'
                  f' {limit:.3f} (a quarter of the mean RNN gap, {gap:.3f}, and at least'
                  ' twice the seed spread)'))
  return out


def paper_report(sweep_dir: str, s: ml_collections.ConfigDict, command: str = '') -> str:
  """Tables laid out like the paper's, the figure, the findings and the seed spread."""
  from rnnlm.studies import plots
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
  rates = sorted(s.learning_rates)
  for edge, word, beyond in ((rates[-1], 'largest', 'larger'), (rates[0], 'smallest', 'smaller')):
    at_edge = sum(float(r['learning_rate']) == edge for r in chosen.values())
    if len(rates) > 1 and at_edge:
      lines += ['', f'The chosen rate is the {word} of the grid ({edge:g}) for {at_edge} of'
                f' {len(chosen)} models: a {beyond} one might do better.']
  capped = sum(still_improving(r) for r in chosen.values())
  if capped:
    lines += ['', f'{capped} of {len(chosen)} models were still improving when the step cap'
              ' stopped them (best step = last step): at this cap the table compares models'
              ' at equal training, not at convergence.']
  lines += ['', '## The findings of the paper, checked', '',
            f'Differences under {noise:.3f} nats (the mean difference between two seeds,'
            ' below) are counted as ties.' if noise else
            'No second seed has finished yet, so no difference is discounted as noise.', '']
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


# ----------------------------------------------------------------------------
# Parameters x data


def joint_grid(s: ml_collections.ConfigDict) -> list[dict]:
  return [{'model.hidden_size': h, 'data.train_fraction': f}
          for h in s.hidden_sizes for f in s.train_fractions]


def run_joint(config: ml_collections.ConfigDict, sweep_dir: str, command: str = '') -> str:
  """Runs the grid, measures samples of every finished trial, writes the report."""
  s = config.sweep
  sweep.run_sweep(config.base, joint_grid(s), sweep_dir, s.trials_at_once, s.get('executor'))
  measure_grid(sweep_dir, config.emergence, config.base.data)
  return joint_report(sweep_dir, config, command)


EMERGENCE_CSV = 'emergence_grid.csv'


def measure_grid(sweep_dir: str, e: ml_collections.ConfigDict, data_config) -> list[dict]:
  """Samples `e.seeds` texts from the best checkpoint of every finished trial and
  measures each (`rnnlm.emergence`); rows go to emergence_grid.csv, and trials
  measured before are not sampled again."""
  import csv
  from rnnlm.training import checkpoint
  from rnnlm.studies import emergence_runs
  from rnnlm.training import sample
  path = os.path.join(sweep_dir, EMERGENCE_CSV)
  rows = sweep.read_csv(path) if os.path.exists(path) else []
  seen = {(r['name'], int(r['seed'])) for r in rows}
  ref, added = None, 0
  for r in sweep.read_csv(os.path.join(sweep_dir, 'results.csv')):
    todo = [seed for seed in e.seeds if (r['name'], seed) not in seen]
    if r['status'] != 'done' or not todo:
      continue
    ref = ref or emergence_runs.Reference(data_config, e)
    model, vocab, _ = checkpoint.load_model(os.path.join(sweep_dir, 'trials', r['name']), 'best')
    for seed in todo:
      text = sample.generate_text(model, vocab, e.prime, length=e.sample_length, seed=seed,
                                  temperature=e.temperature)[0]
      rows.append({'name': r['name'], 'num_params': r['num_params'],
                   'train_split_chars': r['train_split_chars'], 'seed': seed,
                   **ref.measure(text[len(e.prime):]), 'sample': text[:e.show_chars]})
      added += 1
  if added:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    tmp = path + '.tmp'
    with open(tmp, 'w', newline='') as f:
      w = csv.DictWriter(f, fieldnames=keys)
      w.writeheader()
      w.writerows(rows)
    os.replace(tmp, path)
  if ref is not None:
    with open(os.path.join(sweep_dir, 'emergence_baseline.json'), 'w') as f:
      json.dump(ref.baseline, f, indent=2)
  return rows


def _grid_cells(rows: Sequence[dict]) -> tuple[list[int], list[int]]:
  ns = sorted({int(r['num_params']) for r in rows})
  ds = sorted({int(r['train_split_chars']) for r in rows})
  return ns, ds


def emergence_summary(rows: Sequence[dict], key: str) -> dict:
  """{(N, D): (mean, low, high)} of one measure over the samples of each trial."""
  by_cell: dict = {}
  for r in rows:
    v = _float(r, key)
    if v is not None and np.isfinite(v):
      by_cell.setdefault((int(r['num_params']), int(r['train_split_chars'])), []).append(v)
  return {k: (float(np.mean(v)), float(min(v)), float(max(v))) for k, v in by_cell.items()}


def _curves(sweep_dir: str, rows: Sequence[dict], chars_per_step: int) -> list[dict]:
  """Each finished trial's validation curve as (training FLOPs, loss) points."""
  out = []
  for r in rows:
    with open(os.path.join(sweep_dir, 'trials', r['name'], 'metrics.jsonl')) as f:
      records = [json.loads(l) for l in f if l.strip()]
    n = int(r['num_params'])
    out.append({'num_params': n, 'train_split_chars': int(r['train_split_chars']),
                'points': [(scaling.training_flops(n, rec['step'] * chars_per_step),
                            rec['val_loss']) for rec in records]})
  return out


def joint_report(sweep_dir: str, config: ml_collections.ConfigDict, command: str = '') -> str:
  from rnnlm.studies import plots
  s, base = config.sweep, config.base
  all_rows = sweep.read_csv(os.path.join(sweep_dir, 'results.csv'))
  rows = [r for r in all_rows if r['status'] == 'done']
  ns, ds = _grid_cells(rows)
  keyed = {(int(r['num_params']), int(r['train_split_chars'])): r for r in rows}
  loss = {key: float(r['best_val_loss']) for key, r in keyed.items()}
  gap = {(int(r['num_params']), int(r['train_split_chars'])):
         float(r['final_val_loss']) - float(r['final_train_loss']) for r in rows}
  lines = [f'# {s.title}', '', *report.made_by(command),
           'Best validation loss (nats per character) of each model size (rows: parameters N)'
           ' trained on each prefix of the train split (columns: characters D), each until'
           f' {base.train.early_stopping_patience} evaluations brought no new best or'
           f' {base.train.num_steps:,} steps.', '']
  capped = {key for key, r in keyed.items() if still_improving(r)}
  first = {key for key, r in keyed.items() if best_at_first_eval(r, base.eval.eval_every)}
  cell = lambda key: (None if key not in loss else report.fmt(loss[key], 4)
                      + ('*' if key in capped else '') + ('+' if key in first else ''))
  lines += report.table(['N \\ D', *(f'{d:,}' for d in ds)],
                        [[f'{n:,}', *(cell((n, d)) for d in ds)] for n in ns])
  if capped:
    lines += ['', f'\\* {len(capped)} of {len(rows)} trials were still improving when the step'
              ' cap stopped them (best step = last step): their loss is an upper bound on'
              ' what that size reaches on that data.']
  if first:
    lines += ['', f'\\+ {len(first)} of {len(rows)} trials were best at their first evaluation'
              f' (step {base.eval.eval_every}): their minimum may lie earlier, so their loss'
              ' too is an upper bound.']
  fits = {}
  if len(rows) >= 6:
    lines += ['', '## Joint laws', '',
              f'Least squares; 95% intervals from {s.bootstrap} bootstrap resamples of the'
              ' trials; leave-one-out error predicts each trial from a fit to the others.', '']
    fit_rows = []
    converged = [key for key in keyed if key not in capped and key not in first]
    sets = [('all trials', list(keyed))]
    if (capped or first) and len(converged) >= 8:
      sets.append(('trials with a minimum inside their run', converged))
    for which, keys in sets:
      fit = scaling.fit_joint([k[0] for k in keys], [k[1] for k in keys],
                              [loss[k] for k in keys], s.bootstrap)
      fits['main' if which == 'all trials' else 'converged'] = fit
      for law, form in (('kaplan', 'L = [(N_c/N)^(a_N/a_D) + D_c/D]^a_D'),
                        ('chinchilla', 'L = E + A/N^a + B/D^b')):
        f = fit[law]
        consts = ', '.join(f'{k} = {scaling.format_interval(v, f["intervals"].get(k))}'
                           for k, v in f['params'].items())
        fit_rows.append([f'{which} ({len(keys)})', form, consts, f['rmse'], f['loo_rmse']])
    with open(os.path.join(sweep_dir, 'fits.json'), 'w') as f:
      json.dump(fits, f, indent=2)
    lines += report.table(['fitted to', 'law', 'constants [95% interval]', 'rmse',
                           'leave-one-out rmse'], fit_rows)
    lines += ['', f'Better by leave-one-out error over all trials: {fits["main"]["better"]}'
              + (f'; over those with a minimum inside their run: {fits["converged"]["better"]}.'
                 if 'converged' in fits else '.')]
    fits = fits['main']
  lines += ['', '## Overfitting', '',
            'Validation minus training loss at the last evaluation (positive: the model'
            ' fits its training text better than unseen text):', '']
  lines += report.table(['N \\ D', *(f'{d:,}' for d in ds)],
                        [[f'{n:,}', *(gap.get((n, d)) for d in ds)] for n in ns], 3)
  os.makedirs(os.path.join(sweep_dir, 'plots'), exist_ok=True)
  out = lambda name: os.path.join(sweep_dir, 'plots', name)
  chars_per_step = base.train.batch_size * base.train.seq_length
  curves = _curves(sweep_dir, rows, chars_per_step)
  front = scaling.frontier([p for c in curves for p in c['points']])
  figures = [plots.joint_loss_figure(loss, fits.get(fits.get('better', ''), None), out('loss_vs_N_and_D.png')),
             plots.heat_map({k: (v, None, None) for k, v in gap.items()}, ns, ds,
                            'val - train loss at the end (nats)', out('overfitting.png')),
             plots.frontier_figure(curves, front, out('compute_frontier.png'))]
  lines += ['', '## Compute', '',
            'Training compute as 6 N x characters seen (`rnnlm.scaling.training_flops`), over'
            ' every evaluation of every trial. The frontier (lowest validation loss reached'
            ' for at most that compute) and the model size on it:', '']
  owner = {}
  for c in curves:
    for p in c['points']:
      owner.setdefault(p, c)
  lines += report.table(['training FLOPs', 'val loss', 'N', 'D'],
                        [[f'{f:.3g}', l, f'{owner[(f, l)]["num_params"]:,}',
                          f'{owner[(f, l)]["train_split_chars"]:,}']
                         for f, l in _thin(front, 12)])
  emergence_path = os.path.join(sweep_dir, EMERGENCE_CSV)
  if os.path.exists(emergence_path):
    from rnnlm.studies import emergence
    samples = sweep.read_csv(emergence_path)
    baseline = {}
    if os.path.exists(os.path.join(sweep_dir, 'emergence_baseline.json')):
      with open(os.path.join(sweep_dir, 'emergence_baseline.json')) as f:
        baseline = json.load(f)
    keys = [k for k in emergence.PROSE_KEYS + emergence.CODE_KEYS
            if k != 'val_bpc' and any(_float(r, k) is not None for r in samples)]
    keys = list(dict.fromkeys(keys))
    n_seeds = len({r['seed'] for r in samples})
    lines += ['', '## What emerges where', '',
              f'Each trial\'s best checkpoint, {n_seeds} samples of'
              f' {config.emergence.sample_length:,} characters (seeds'
              f' {", ".join(str(x) for x in config.emergence.seeds)}, temperature'
              f' {config.emergence.temperature}), measured as in the emergence runs; each cell'
              ' is the mean, with the range over samples in brackets. The corpus\'s own'
              ' value on held-out text is given with each measure.', '']
    for k in keys:
      summ = emergence_summary(samples, k)
      figures.append(plots.heat_map(summ, ns, ds, k, out(f'emergence_{k}.png')))
      base_v = baseline.get(k)
      lines += [f'### {k} (corpus: {report.fmt(base_v, 3)})', '']
      lines += report.table(['N \\ D', *(f'{d:,}' for d in ds)],
                            [[f'{n:,}', *(_cell_text(summ.get((n, d))) for d in ds)]
                             for n in ns])
      lines.append('')
  failed = [r for r in all_rows if r['status'] == 'failed']
  if failed:
    lines += ['', 'Failed trials (excluded):', ''] + [f'- {r["name"]}: {r["error"]}'
                                                     for r in failed]
  pending = len(joint_grid(s)) - len(rows)
  if pending > 0:
    lines += ['', f'{pending} trials have not finished; run the command again to resume.']
  lines += [''] + [f'![{os.path.basename(p)}](plots/{os.path.basename(p)})' for p in figures if p]
  return report.write(os.path.join(sweep_dir, 'report.md'), lines)


def _cell_text(v) -> str:
  if v is None:
    return '-'
  mean, low, high = v
  return f'{mean:.3g} [{low:.3g}, {high:.3g}]' if high > low else f'{mean:.3g}'


def _thin(points: Sequence, k: int) -> list:
  """At most k points of a list, evenly spaced, the last one included."""
  if len(points) <= k:
    return list(points)
  idx = sorted(set(np.linspace(0, len(points) - 1, k).round().astype(int)))
  return [points[i] for i in idx]


# ----------------------------------------------------------------------------
# Architectures at equal parameter counts: the 2015 cells and what came after


FAMILIES_FILE = 'families.json'


def architecture_grid(config: ml_collections.ConfigDict) -> list[tuple[str, int, dict]]:
  """(family, budget, overrides) for every family at every parameter budget, the
  width of each chosen so that its parameter count is the closest to the budget."""
  s, base = config.sweep, config.base
  vocab_size = _vocab_size(base)
  grid = []
  for family, fields in s.families.items():
    overrides = {k.replace(':', '.'): v for k, v in fields.items()}
    probe = sweep.apply_overrides(base, overrides)
    multiple = s.hidden_multiple
    if probe.model.arch == 'transformer':  # The width splits into the heads.
      multiple = math.lcm(multiple, probe.model.num_heads)
    count = lambda h, o=overrides: scaling.config_params(
        sweep.apply_overrides(base, {**o, 'model.hidden_size': h}).model, vocab_size)
    for budget in s.budgets:
      hidden = scaling.closest_size(count, budget, multiple)
      grid.append((family, budget, {**overrides, 'model.hidden_size': hidden}))
  return grid


def run_architectures(config: ml_collections.ConfigDict, sweep_dir: str, command: str = '') -> str:
  s = config.sweep
  grid = architecture_grid(config)
  os.makedirs(sweep_dir, exist_ok=True)
  with open(os.path.join(sweep_dir, FAMILIES_FILE), 'w') as f:
    json.dump({sweep.trial_name(o): [family, budget] for family, budget, o in grid}, f, indent=2)
  sweep.run_sweep(config.base, [o for _, _, o in grid], sweep_dir, s.trials_at_once,
                  s.get('executor'))
  return architectures_report(sweep_dir, config, command)


def _val_curve(sweep_dir: str, name: str) -> list[tuple[float, float]]:
  """(training minutes, validation loss) at each evaluation of a trial."""
  with open(os.path.join(sweep_dir, 'trials', name, 'metrics.jsonl')) as f:
    records = [json.loads(l) for l in f if l.strip()]
  return [(r['train_time_s'] / 60, r['val_loss']) for r in records if 'train_time_s' in r]


def architectures_report(sweep_dir: str, config: ml_collections.ConfigDict,
                         command: str = '') -> str:
  from rnnlm.studies import plots
  s, base = config.sweep, config.base
  with open(os.path.join(sweep_dir, FAMILIES_FILE)) as f:
    family_of = {name: tuple(v) for name, v in json.load(f).items()}
  all_rows = sweep.read_csv(os.path.join(sweep_dir, 'results.csv'))
  rows = [r for r in all_rows if r['status'] == 'done' and r['name'] in family_of]
  families, budgets = list(s.families), list(s.budgets)
  at = {family_of[r['name']]: r for r in rows}
  t = base.train
  lines = [f'# {s.title}', '', *report.made_by(command),
           f'Each model trained for {t.num_steps:,} steps of {t.batch_size} x {t.seq_length}'
           ' characters (the same characters for every model), one trial at a time on this'
           ' machine; its width chosen so that its parameter count is the closest to the'
           ' budget. Best validation loss (nats per character):', '']
  cell = lambda f, b: (f'{float(at[(f, b)]["best_val_loss"]):.4f}' if (f, b) in at else None)
  lines += report.table(['model', *(f'{b:,} params' for b in budgets)],
                        [[f, *(cell(f, b) for b in budgets)] for f in families])
  lines += ['', 'Width, parameters, training minutes and training speed of each trial:', '']
  detail = []
  for f in families:
    for b in budgets:
      r = at.get((f, b))
      if r is None:
        continue
      minutes = float(r['train_time_s']) / 60
      detail.append([f, f'{b:,}', r['hidden_size'], f'{int(r["num_params"]):,}',
                     f'{minutes:.2f}', f'{int(r["train_chars_seen"]) / 60 / minutes / 1000:.1f}',
                     r['best_val_loss'], r['test_loss']])
  lines += report.table(['model', 'budget', 'width', 'parameters', 'train min',
                         'k chars/s', 'val loss', 'test loss'], detail, 4)
  winners = []
  for b in budgets:
    done = [f for f in families if (f, b) in at]
    if done:
      winners.append(f'{b:,}: {min(done, key=lambda f: float(at[(f, b)]["best_val_loss"]))}')
  if len(winners) > 1:
    lines += ['', 'Best model at each budget: ' + '; '.join(winners) + '.']
  # Against the clock: each family's lowest validation loss reached by each minute,
  # over all its sizes (the lower envelope of its trials' curves).
  envelopes, longest = {}, 0.0
  for f in families:
    points = [p for b in budgets if (f, b) in at for p in _val_curve(sweep_dir, at[(f, b)]['name'])]
    if points:
      envelopes[f] = scaling.frontier(points)
      longest = max(longest, max(x for x, _ in points))
  marks = [m for m in s.get('minute_marks', (1, 2, 5, 10)) if m <= longest]
  if marks:
    best_by = lambda env, m: min((l for x, l in env if x <= m), default=None)
    lines += ['', '## Against training time', '',
              'The lowest validation loss each model family reached by each minute of training'
              ' (evaluation not counted), over all its sizes:', '']
    lines += report.table(['model', *(f'{m:g} min' for m in marks)],
                          [[f, *(best_by(envelopes[f], m) for m in marks)] for f in envelopes])
  os.makedirs(os.path.join(sweep_dir, 'plots'), exist_ok=True)
  out = lambda name: os.path.join(sweep_dir, 'plots', name)
  by_params = {f: sorted((int(at[(f, b)]['num_params']), float(at[(f, b)]['best_val_loss']))
                         for b in budgets if (f, b) in at) for f in families}
  figures = [
      plots.family_figure(by_params, 'parameters', 'best validation loss (nats/char)',
                          out('loss_vs_params.png'), logx=True),
      plots.family_figure(envelopes, 'training minutes (evaluation not counted)',
                          'validation loss (nats/char)', out('loss_vs_minutes.png'), logx=False),
  ]
  pending = len(family_of) - len(rows)
  if pending > 0:
    lines += ['', f'{pending} trials have not finished; run the command again to resume.']
  failed = [r for r in all_rows if r['status'] == 'failed']
  if failed:
    lines += ['', 'Failed trials:', ''] + [f'- {r["name"]}: {r["error"]}' for r in failed]
  lines += [''] + [f'![{os.path.basename(p)}](plots/{os.path.basename(p)})' for p in figures if p]
  return report.write(os.path.join(sweep_dir, 'report.md'), lines)


def run_from_config(config: ml_collections.ConfigDict, sweep_dir: str, command: str = '') -> str:
  kind = config.sweep.get('kind', 'field')
  if kind == 'paper_table':
    return run_paper_table(config, sweep_dir, command)
  if kind == 'joint':
    return run_joint(config, sweep_dir, command)
  if kind == 'architectures':
    return run_architectures(config, sweep_dir, command)
  raise UserError(f'unknown sweep.kind {kind!r}; use field, paper_table, joint or architectures')
