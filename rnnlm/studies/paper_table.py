"""The model comparison of Karpathy, Johnson and Fei-Fei (2015), Table 1: RNN, LSTM
and GRU of 1, 2 and 3 layers at equal parameter budgets, each at its best learning
rate on validation, extra seeds at one budget, and the paper's findings checked."""

from __future__ import annotations

import json
import os
import re
from typing import Sequence

import ml_collections
import numpy as np

from rnnlm import data
from rnnlm.studies import report
from rnnlm.studies import scaling
from rnnlm.studies import sweep
from rnnlm.studies import scale_runs

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


def chosen(rows: Sequence[dict], seed: int = 0) -> dict:
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
  """Runs the comparison, each model's rate brackets and extra seeds (at `seed_budget`)
  as soon as its own trials allow, and writes the report."""
  s, base = config.sweep, config.base
  vocab_size = scale_runs.vocab_size(base)
  grid = paper_grid(s, vocab_size, base.model.embed_dim)
  hidden = model_hidden_sizes(grid)
  if s.get('centre_rates', False):  # Larger budgets are planned from the smallest's rates.
    grid = [(b, o) for b, o in grid if b == min(s.budgets)]
  # Not before a larger budget's centred rates: its bracket is planned from those.
  grid += finished_off_grid(grid, s, sweep_dir)
  budgets = {sweep.trial_name(o): b for b, o in grid}
  _write_budgets(sweep_dir, budgets)  # So that a report can be written mid-sweep.
  marker = os.path.join(sweep_dir, FINISHED)
  if os.path.exists(marker):  # Running again (e.g. with more budgets): not finished now.
    os.remove(marker)
  planned = {sweep.trial_name(o): (b, o) for b, o in grid}

  def more(finished_rows):
    new = plan_more(with_budgets(finished_rows, budgets), planned, s, hidden)
    for b, o in new:
      planned[sweep.trial_name(o)] = (b, o)
      budgets[sweep.trial_name(o)] = b
    if new:
      _write_budgets(sweep_dir, budgets)
    return [o for _, o in new]

  # A model's rate brackets and its seeds are planned as soon as its own trials have
  # finished, and start on the next free slot (local trials); other executors run them
  # a round at a time.
  while True:
    rows = sweep.run_sweep(base, [o for _, o in planned.values()], sweep_dir,
                           s.trials_at_once, s.get('executor'), more=more)
    if not more(rows):
      break
  rows = with_budgets(rows, budgets)
  if all(r['status'] == 'done' for r in rows) and len(rows) == len(budgets):
    data.atomic_write(marker, json.dumps({'trials': len(budgets)}) + '\n')
  return paper_report(sweep_dir, s, command)


# Written when every trial of the sweep has finished, its rate brackets and seeds
# included (those are planned as it goes); until then the findings are provisional.
FINISHED = 'finished.json'


def finished(sweep_dir: str) -> bool:
  return os.path.exists(os.path.join(sweep_dir, FINISHED))


# Under a Table 1 layout that marks a model's loss "(so far)" (`unsettled`).
SO_FAR_NOTE = ('"(so far)": the best of the rates finished; more of that model\'s rates are'
               ' running or planned.')
_MODEL_IN_NAME = re.compile(r'(?:^|_)cell-([a-z0-9]+)_num_layers-(\d+)_')


def unsettled(rows: Sequence[dict], budgets_by_name: dict, sweep_finished: bool) -> set:
  """(cell, layers, budget) of the models whose chosen rate may still change: a trial
  planned for them (budgets.json) has not finished, or their best rate is the largest
  or smallest they were trained at (a bracketing rate comes next). Empty once the sweep
  has finished."""
  if sweep_finished:
    return set()
  ended = {r['name'] for r in rows if r['status'] in ('done', 'failed')}
  out = set()
  for name, budget in budgets_by_name.items():
    m = _MODEL_IN_NAME.search(name)
    if m and name not in ended:
      out.add((m.group(1), int(m.group(2)), int(budget)))
  tried = rates_tried(rows)
  for key, r in chosen(rows).items():
    have = tried[key]
    if float(r['learning_rate']) in (have[0], have[-1]):
      out.add(key)
  return out


def plan_more(rows: Sequence[dict], planned: dict, s: ml_collections.ConfigDict,
              hidden: dict | None = None) -> list[tuple[int, dict]]:
  """(budget, overrides) of the trials to add, given the rows finished so far (with
  their budgets) and `planned` ({trial name: (budget, overrides)}, all trials so far).
  Only models (cell, depth, budget) none of whose planned trials is still to finish are
  considered: one whose best rate is at an edge gets its bracketing rate
  (`bracket_trials`, if `s.bracket_rates`); one whose best rate is settled gets its
  extra seeds at `s.seed_budget`, at that rate, and (if `s.centre_rates`) its larger
  budgets' first rates (`centred_trials`; `hidden`: `model_hidden_sizes`). The same
  trials, in the end, as planning each phase after the whole grid; they can start
  sooner."""
  ended = {r['name'] for r in rows}
  busy = set()
  for name, (b, o) in planned.items():
    if name not in ended:
      busy.add((o['model.cell'], o['model.num_layers'], b))
  brackets = [(b, o) for b, o in (bracket_trials(rows, s) if s.get('bracket_rates', False) else [])
              if (o['model.cell'], o['model.num_layers'], b) not in busy]
  extending = {(o['model.cell'], o['model.num_layers'], b) for b, o in brackets}
  seeds = []
  for (cell, layers, budget), r in sorted(chosen(rows).items()):
    if budget != s.seed_budget or (cell, layers, budget) in busy | extending:
      continue
    for seed in s.extra_seeds:
      seeds.append((budget, {'model.cell': cell, 'model.num_layers': layers,
                             'model.hidden_size': int(r['hidden_size']),
                             'train.learning_rate': float(r['learning_rate']), 'seed': seed}))
  centred = (centred_trials(rows, s, hidden, busy | extending)
             if s.get('centre_rates', False) and hidden else [])
  return [(b, o) for b, o in brackets + seeds + centred if sweep.trial_name(o) not in planned]


def model_hidden_sizes(grid: Sequence[tuple[int, dict]]) -> dict:
  """{(cell, layers, budget): hidden size} of a `paper_grid`."""
  return {(o['model.cell'], o['model.num_layers'], b): o['model.hidden_size'] for b, o in grid}


def centred_trials(rows: Sequence[dict], s: ml_collections.ConfigDict, hidden: dict,
                   unsettled: set) -> list[tuple[int, dict]]:
  """(budget, overrides) of the first trials of each larger budget's model: for every
  (cell, depth) whose model at the smallest budget is settled (not in `unsettled`), the
  rate chosen there and one grid step either side, at each larger budget (whose
  brackets `bracket_trials` then carries further where its best is at an edge)."""
  smallest, ratio = min(s.budgets), _grid_ratio(s)
  out = []
  for (cell, layers, budget), best in sorted(chosen(rows).items()):
    if budget != smallest or (cell, layers, budget) in unsettled:
      continue
    lr = float(best['learning_rate'])
    for b in sorted(s.budgets)[1:]:
      for x in (lr / ratio, lr, lr * ratio):
        out.append((b, {'model.cell': cell, 'model.num_layers': layers,
                        'model.hidden_size': hidden[(cell, layers, b)],
                        'train.learning_rate': float(f'{x:.6g}')}))
  return out


def finished_off_grid(grid: Sequence[tuple[int, dict]], s: ml_collections.ConfigDict,
                      sweep_dir: str) -> list[tuple[int, dict]]:
  """(budget, overrides) of the seed-0 trials already finished in `sweep_dir` for a
  model of `grid` at a rate off the configured grid that the bracket rule could reach
  (a grid rate times the grid's ratio to a power up to `s.max_extra_rates`), e.g. from
  a grid that began elsewhere. They count towards the model's choice of rate: a lower
  validation loss at such a rate is never left out of the table."""
  ratio, k = _grid_ratio(s), s.get('max_extra_rates', 2)
  in_grid = {sweep.trial_name(o) for _, o in grid}
  models = {(b, o['model.cell'], o['model.num_layers'], o['model.hidden_size'])
            for b, o in grid}
  rates = sorted({float(f'{r * ratio ** i:.6g}') for r in s.learning_rates
                  for i in range(-k, k + 1)})
  out = []
  for b, cell, layers, hidden in sorted(models):
    for lr in rates:
      o = {'model.cell': cell, 'model.num_layers': layers, 'model.hidden_size': hidden,
           'train.learning_rate': lr}
      name = sweep.trial_name(o)
      if name not in in_grid and os.path.exists(
          os.path.join(sweep_dir, 'trials', name, 'results.json')):
        in_grid.add(name)
        out.append((b, o))
  return out


def _grid_ratio(s: ml_collections.ConfigDict) -> float:
  rates = sorted(s.learning_rates)
  return rates[1] / rates[0] if len(rates) > 1 else 2.0


def bracket_trials(rows: Sequence[dict], s: ml_collections.ConfigDict) -> list[tuple[int, dict]]:
  """(budget, overrides) of the trials that carry the rate grid one step further for
  each (cell, depth, budget) whose best rate (seed 0) is the largest or the smallest
  it was trained at: that rate times or divided by the grid's ratio, at most
  `s.max_extra_rates` steps beyond the configured grid either way."""
  rates, ratio = sorted(s.learning_rates), _grid_ratio(s)
  extra = ratio ** s.get('max_extra_rates', 2)
  bottom, top = rates[0] / extra, rates[-1] * extra
  tried = rates_tried(rows)
  out = []
  for (cell, layers, budget), best in sorted(chosen(rows).items()):
    lr, have = float(best['learning_rate']), tried[(cell, layers, budget)]
    nxt = (lr * ratio if lr == have[-1] else lr / ratio if lr == have[0] and len(have) > 1
           else None)
    if nxt is None or not bottom * 0.999 <= nxt <= top * 1.001:
      continue
    out.append((budget, {'model.cell': cell, 'model.num_layers': layers,
                         'model.hidden_size': int(best['hidden_size']),
                         'train.learning_rate': float(f'{nxt:.6g}')}))
  return out


def rates_tried(rows: Sequence[dict]) -> dict:
  """{(cell, layers, budget): sorted rates its seed-0 trials finished at}."""
  tried = {}
  for r in rows:
    if r['status'] == 'done' and int(r['seed']) == 0:
      key = (r['cell'], int(r['num_layers']), int(r['budget']))
      tried.setdefault(key, set()).add(float(r['learning_rate']))
  return {k: sorted(v) for k, v in tried.items()}


def _write_budgets(sweep_dir: str, budgets: dict) -> None:
  os.makedirs(sweep_dir, exist_ok=True)
  with open(os.path.join(sweep_dir, 'budgets.json'), 'w') as f:
    json.dump(budgets, f, indent=2)


def with_budgets(rows: list[dict], budgets: dict) -> list[dict]:
  return [dict(r, budget=budgets[r['name']]) for r in rows if r['name'] in budgets]


def spread(rows: Sequence[dict], seed_budget: int) -> dict:
  """{(cell, layers): [test losses over seeds]} at the seed budget, chosen rates only."""
  out = {}
  for (cell, layers, budget), r in chosen(rows).items():
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
      # Mixed: no consistent direction (ties count against one; all ties: no effect).
      verdict = ('held (all within seed spread)' if t == len(pairs) else
                 'held (mixed)' if w and lo or t else
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
                  f' {limit:.3f} (a quarter of the RNN\'s mean gap to the better gated cell,'
                  f' {gap:.3f}, and at least twice the seed spread)'))
  return out


def read_sweep(sweep_dir: str) -> tuple[list[dict], dict]:
  """(rows of results.csv with their budgets, {trial name: budget}) of a sweep."""
  with open(os.path.join(sweep_dir, 'budgets.json')) as f:
    budgets_by_name = json.load(f)
  rows = with_budgets(sweep.read_csv(os.path.join(sweep_dir, 'results.csv')), budgets_by_name)
  return rows, budgets_by_name


def loss_table(rows: Sequence[dict]) -> tuple[dict, float]:
  """({(cell, layers, budget): test loss at the chosen rate}, the mean difference
  between seeds of a model at the budgets that have extra seeds (0.0: none yet))."""
  table = {k: float(r['test_loss']) for k, r in chosen(rows).items() if r['test_loss'] != ''}
  seed_budgets = {int(r['budget']) for r in rows if int(r['seed']) != 0}
  diffs = [max(v) - min(v) for b in seed_budgets for v in spread(rows, b).values()]
  return table, float(np.mean(diffs)) if diffs else 0.0


def paper_report(sweep_dir: str, s: ml_collections.ConfigDict, command: str = '') -> str:
  """Tables laid out like the paper's, the figure, the findings and the seed spread."""
  from rnnlm.studies import plots
  rows, budgets_by_name = read_sweep(sweep_dir)
  picked = chosen(rows)
  table, noise = loss_table(rows)
  seeds = spread(rows, s.seed_budget)
  budgets = sorted(set(budgets_by_name.values()))  # Those this sweep ran.
  # 50k, 3.2M for round budgets; the exact count (42,962) for budgets set by LSTM widths.
  label = lambda b: (f'{b / 1e6:g}M' if b >= 1e6 and b % 100_000 == 0 else
                     f'{b / 1e3:g}k' if b % 1000 == 0 else f'{b:,}')
  lines = [f'# {s.title}', '', *report.made_by(command),
           'Test loss (nats per character) of the best checkpoint of each model, at the'
           ' learning rate with the lowest validation loss. Rows: cell and depth; columns:'
           ' parameter budget.', '']
  # Losses to three decimals, trailing zeros kept (1.400, not 1.4).
  nats = lambda v: report.Formatted('-' if v is None or v != v else f'{float(v):.3f}')
  open_ = unsettled(rows, budgets_by_name, finished(sweep_dir))
  so_far = lambda key: report.Formatted(
      f'{nats(table.get(key))} (so far)' if key in open_ and key in table else
      str(nats(table.get(key))))
  body = []
  for c in s.cells:
    for l in s.layers:
      body.append([f'{scale_runs.CELL_NAMES.get(c, c)}, {l} layer{"s" if l > 1 else ""}',
                   *(so_far((c, l, b)) for b in budgets)])
  lines += report.table(["model", *(label(b) for b in budgets)], body)
  if open_ & set(table):
    lines += ['', SO_FAR_NOTE]
  lines += ['', 'Parameters, hidden size, chosen learning rate, steps and why each stopped:', '']
  detail = []
  for (c, l, b), r in sorted(picked.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
    detail.append([label(b), scale_runs.CELL_NAMES.get(c, c), l, r['hidden_size'], r['num_params'],
                   r['learning_rate'], r['best_step'], r['final_step'], r['stopped'],
                   nats(r['best_val_loss']), nats(r['test_loss'])])
  lines += report.table(['budget', 'cell', 'layers', 'hidden', 'parameters', 'lr', 'best step',
                         'last step', 'stopped by', 'val loss', 'test loss'], detail, 4)
  tried = rates_tried(rows)
  edges = []
  for (c, l, b), r in sorted(picked.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
    lr, have = float(r['learning_rate']), tried[(c, l, b)]
    if len(have) == 1 or lr in (have[0], have[-1]):
      word = 'only' if len(have) == 1 else 'largest' if lr == have[-1] else 'smallest'
      edges.append(f"{scale_runs.CELL_NAMES.get(c, c)} {l} layer{'s' if l > 1 else ''} at"
                   f' {label(b)} ({lr:g}, the {word} rate tried)')
  lines += ['', f'{len(picked) - len(edges)} of {len(picked)} chosen rates lie inside the'
            ' rates their model was trained at' + (': all bracketed.' if not edges else
                                                   '; at an edge: ' + '; '.join(edges) + '.')]
  capped = sum(scale_runs.still_improving(r) for r in picked.values())
  if capped:
    lines += ['', f'{capped} of {len(picked)} models were still improving when the step cap'
              ' stopped them (best step = last step): at this cap the table compares models'
              ' at equal training, not at convergence.']
  slow = sum(scale_runs.creeping(r) for r in picked.values())
  if slow:
    lines += ['', f'{slow} of {len(picked)} models were stopped by early stopping at their best'
              ' evaluation: still improving, but by less than train.early_stopping_min_delta'
              ' over their last train.early_stopping_patience evaluations together.']
  lines += ['', '## The findings of the paper, checked', '',
            f'Differences under {noise:.3f} nats (the mean difference between two seeds,'
            ' below) are counted as ties.' if noise else
            'No second seed has finished yet, so no difference is discounted as noise.', '']
  lines += report.table(['finding (Karpathy et al. 2015)', 'here', 'evidence'],
                        [list(f) for f in findings(table, s.cells, s.layers, budgets, noise)])
  if seeds:
    lines += ['', f'## Spread over seeds at {label(s.seed_budget)} parameters', '']
    lines += report.table(['cell', 'layers', 'test loss per seed', 'range'],
                          [[scale_runs.CELL_NAMES.get(c, c), l, ', '.join(f'{v:.3f}' for v in vs),
                            max(vs) - min(vs)] for (c, l), vs in sorted(seeds.items())], 3)
  failed = [r for r in rows if r['status'] == 'failed']
  if failed:
    lines += ['', 'Failed trials (excluded):', ''] + [f'- {r["name"]}: {r["error"]}'
                                                     for r in failed]
  pending = len(budgets_by_name) - sum(r['status'] == 'done' for r in rows)
  if pending > 0:
    lines += ['', f'{pending} trials have not finished; run the command again to resume.']
  if not finished(sweep_dir):
    lines += ['', 'The sweep has not finished (it plans the rates beyond an edge and the'
              ' extra seeds as it goes): the findings above are provisional.']
  os.makedirs(os.path.join(sweep_dir, 'plots'), exist_ok=True)
  fig = plots.paper_figure(
      [dict(r, test_loss=float(r['test_loss'])) for r in picked.values() if r['test_loss'] != ''],
      os.path.join(sweep_dir, 'plots', 'loss_vs_params_by_cell.png'))
  lines += ['', f'![loss against parameters](plots/{os.path.basename(fig)})']
  return report.write(os.path.join(sweep_dir, 'report.md'), lines)
