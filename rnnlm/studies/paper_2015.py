"""The findings of Karpathy, Johnson and Fei-Fei (2015), "Visualizing and Understanding
Recurrent Networks", beside rnnlm's numbers, from the result folders in the repository.

`side_by_side(results_dir)` reads (each optional; what is missing reads "not run yet"):

  paper_warpeace/, paper_linux/       Table 1 sweeps (results.csv, budgets.json)
  paper_inside_warpeace/, paper_inside_linux/
                                      look_inside of the converged 2 x 256 LSTMs
                                      (inside.json)
  paper_inside_warpeace_small/        look_inside of the smaller War and Peace model
                                      the error analysis compares with (inside.json)

and returns one row per finding: (finding, the paper's number, rnnlm's number,
verdict, setting). The paper's numbers are the ones quoted in its text; where it gives
a figure or a table without a number in the text, the paper's column says what it
shows.
"""

from __future__ import annotations

import collections
import json
import os
from typing import Sequence


from rnnlm.studies import paper_table
from rnnlm.studies import report
from rnnlm.studies import scale_runs
from rnnlm.studies.inside import study as inside_study

NOT_RUN = 'not run yet'
CORPORA = {'warpeace': 'War and Peace', 'linux': 'Linux kernel (6.2M chars of shuffled files)'}
# Each corpus's Table 1 sweep folder, and its name in a table's header.
SWEEPS = {'warpeace': 'paper_warpeace', 'linux': 'paper_linux'}
_SHORT = {'warpeace': 'War and Peace', 'linux': 'Linux'}
# The paper's test loss (nats per character) of its best LSTM and of its 20-gram.
PAPER_VS_NGRAM = {'warpeace': (1.077, 1.195), 'linux': (0.84, 0.889)}
# The paper's interpretable cells, by corpus, as features of rnnlm.studies.inside.
PAPER_CELLS = {'warpeace': (('line length', 'line_position'), ('quotes', 'inside_quotes')),
               'linux': (('line length', 'line_position'), ('comments', 'inside_comment'),
                         ('quotes and strings', 'inside_string'),
                         ('indentation', 'indent_depth'), ('if statements', 'inside_if'))}
# The closing brace's advantage over the 20-gram lasts to about this many characters.
PAPER_BRACE_REACH = 60
_BRACE_MIN_COUNT = 20  # Distance bins with fewer closing braces are left out.


def _read_json(path: str) -> dict | None:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def table1(sweep_dir: str) -> tuple[dict, float, list[int]] | None:
  """({(cell, layers, budget): test loss at the chosen rate}, seed spread, budgets) of a
  Table 1 sweep's results.csv and budgets.json; None if it has not run."""
  if not all(os.path.exists(os.path.join(sweep_dir, f)) for f in ('results.csv', 'budgets.json')):
    return None
  rows, budgets = paper_table.read_sweep(sweep_dir)
  table, noise = paper_table.loss_table(rows)
  return table, noise, sorted(set(budgets.values()))


def table1_unsettled(sweep_dir: str) -> set:
  """(cell, layers, budget) of a Table 1 sweep's models whose chosen rate may still
  change (`paper_table.unsettled`)."""
  rows, budgets = paper_table.read_sweep(sweep_dir)
  return paper_table.unsettled(rows, budgets, paper_table.finished(sweep_dir))


def table1_layout(results_dir: str) -> tuple[list[str], list[list]] | None:
  """(header, rows) of the paper's Table 1 layout over both corpora: a row per cell and
  depth, a column per corpus and budget that has run, each model's test loss at its
  chosen rate ('-': not yet; "(so far)": rates of that model still running). A column
  with a model not yet run or not yet settled says "(running)". None if neither sweep
  has run."""
  models = [(c, l) for c in ('rnn', 'lstm', 'gru') for l in (1, 2, 3)]
  columns = []
  for corpus, name in SWEEPS.items():
    sweep_dir = os.path.join(results_dir, name)
    got = table1(sweep_dir)
    if got is None:
      continue
    table, _, budgets = got
    open_ = table1_unsettled(sweep_dir)
    done = paper_table.finished(sweep_dir)  # Nothing more runs, whatever is missing.
    for b in budgets:
      running = not done and any((c, l, b) in open_ or (c, l, b) not in table
                                 for c, l in models)
      columns.append((f'{_SHORT[corpus]}, {b:,}{" (running)" if running else ""}',
                      table, b, open_))
  if not columns:
    return None
  nats = lambda v, so_far: report.Formatted(
      '-' if v is None else f'{v:.3f}' + (' (so far)' if so_far else ''))
  rows = [[f'{scale_runs.CELL_NAMES[c]}, {l} layer{"s" if l > 1 else ""}',
           *(nats(t.get((c, l, b)), (c, l, b) in o) for _, t, b, o in columns)]
          for c, l in models]
  return ['model', *(h for h, _, _, _ in columns)], rows


def _table1_rows(corpus: str, results_dir: str) -> list[list]:
  sweep_dir = os.path.join(results_dir, SWEEPS[corpus])
  got = table1(sweep_dir)
  paper = {'LSTM and GRU are far better than the vanilla RNN': 'much lower loss (Table 1)',
           '2 layers are better than 1': 'lower loss (Table 1)',
           'a third layer gives mixed results': 'better for some models, worse for others',
           'LSTM and GRU are close to each other': 'similar losses (Table 1)'}
  if got is None:
    return [[f, p, NOT_RUN, '', CORPORA[corpus]] for f, p in paper.items()]
  table, noise, budgets = got
  setting = (f"{CORPORA[corpus]}, {' and '.join(f'{b:,}' for b in budgets)} parameters,"
             ' each to convergence at its best rate; ' +
             (f'seed spread {noise:.3f} nats' if noise else 'no second seed yet'))
  expected = 3 * 3 * len(budgets)
  checked = {f: (v, e) for f, v, e in
             paper_table.findings(table, ('rnn', 'lstm', 'gru'), (1, 2, 3), budgets, noise)}
  settled = len(set(table) - table1_unsettled(sweep_dir))  # Models whose rate is final.
  rows = []
  for f, p in paper.items():
    verdict, evidence = checked.get(f, ('', NOT_RUN))
    if verdict and settled < expected:
      verdict = f'pending ({settled} of {expected} models)'
    elif verdict and not paper_table.finished(sweep_dir):
      verdict = f'pending: {verdict} so far (rates or seeds still running)'
    rows.append([f, p, evidence, verdict, setting])
  return rows


def _ngram_row(corpus: str, n: dict | None) -> list:
  model, gram = PAPER_VS_NGRAM[corpus]
  finding = 'the LSTM beats the 20-gram on test loss'
  paper = f'{model} against {gram} (nats)'
  if n is None:
    return [finding, paper, NOT_RUN, '', CORPORA[corpus]]
  ours = float(n['run_results']['test_loss'])
  twenty = float(n['ngram_test_loss'][min(19, len(n['ngram_test_loss']) - 1)])
  best = min(float(x) for x in n['ngram_test_loss'])
  verdict = 'held' if ours < min(twenty, best) else 'not held'
  return [finding, paper,
          f'{ours:.3f} against {twenty:.3f} (the best n-gram, order {n["best_order"]}: {best:.3f})',
          verdict, _inside_setting(corpus, n)]


def _inside_setting(corpus: str, n: dict) -> str:
  m = n['model']
  return (f"{CORPORA[corpus]}, {m['cell'].upper()} {m['num_layers']} x {m['hidden_size']},"
          f" test split, step {n['step']}")


def brace_reach(rows: Sequence[dict]) -> tuple[int | None, list[tuple[str, float]]]:
  """(the upper end of the last distance bin, from the nearest on, in which the model
  gives closing braces more probability than the n-gram, or None; every bin's
  difference) over bins with enough braces."""
  bins = [r for r in rows if r['closer'] == '}' and r['count'] >= _BRACE_MIN_COUNT]
  reach = None
  for r in bins:
    if r['mean_diff'] <= 0:
      break
    lo, _, hi = r['distance'].partition('-')
    reach = int(hi) if hi else int(lo.rstrip('+'))
  return reach, [(r['distance'], float(r['mean_diff'])) for r in bins]


def _brace_row(n: dict | None) -> list:
  finding = "closing braces: the LSTM's advantage over the 20-gram by distance"
  paper = f'the LSTM ahead out to about {PAPER_BRACE_REACH} characters'
  if n is None:
    return [finding, paper, NOT_RUN, '', CORPORA['linux']]
  reach, diffs = brace_reach(n['brackets'])
  ours = ('; '.join(f'{d}: {v:+.3f}' for d, v in diffs) or 'no closing braces') + \
         f' (model minus {n["best_order"]}-gram probability)'
  verdict = ('held' if reach is not None and reach >= PAPER_BRACE_REACH // 2 else
             'not held')
  return [finding, paper, f'ahead to {reach} characters: {ours}' if reach else ours,
          verdict, _inside_setting('linux', n)]


def _cell_name(score: dict) -> str:
  """L2.c[17] for a cell score of inside.json (layer 0-based there, 1-based here)."""
  return f"L{score['layer'] + 1}.{score['name']}[{score['unit']}]"


def _cell_rows(corpus: str, n: dict | None) -> list[list]:
  out = []
  for label, feature in PAPER_CELLS[corpus]:
    finding = f'a cell tracks {label}'
    if n is None or feature not in n['top_cells']:
      out.append([finding, 'found (the paper\'s cell figures)', NOT_RUN, '', CORPORA[corpus]])
      continue
    best = n['top_cells'][feature][0]
    chance = n['chance'].get(feature)
    found = inside_study.has_cell(best['strength'], chance)
    out.append([finding, 'found (the paper\'s cell figures)',
                f"{_cell_name(best)}: strength {best['strength']:.2f}, random-init best"
                f" {chance if chance is None else f'{chance:.2f}'}",
                'held' if found else 'not held', _inside_setting(corpus, n)])
  return out


def _saturation_row(corpus: str, n: dict | None) -> list:
  finding = 'forget gates: few saturated in layer 1, many right-saturated above it'
  paper = "the paper's saturation figure (3-layer LSTMs)"
  if n is None or not n['saturation']:
    return [finding, paper, NOT_RUN, '', CORPORA[corpus]]
  shares = {k.split()[1]: v['right_over_half'] for k, v in n['saturation'].items()
            if k.endswith(' f')}
  ours = ', '.join(f'layer {l}: {v:.0%}' for l, v in sorted(shares.items()))
  first, upper = shares.get('1'), [v for l, v in shares.items() if l != '1']
  verdict = 'held' if upper and first is not None and first < min(upper) else 'not held'
  return [finding, paper, f'forget-gate units right-saturated most of the time: {ours}',
          verdict, _inside_setting(corpus, n)]


def _errors_row(small: dict | None, large: dict | None) -> list:
  finding = 'a larger model removes mostly the n-gram errors'
  paper = "the paper's error breakdown (small against large LSTM)"
  if small is None or large is None:
    return [finding, paper, NOT_RUN, '', CORPORA['warpeace']]
  per_char = lambda n: {r['oracle']: r['errors'] / n['errors']['characters']
                        for r in n['errors']['oracles']}
  s, l = per_char(small), per_char(large)
  drop = {k: s[k] - l[k] for k in s}
  top = max(drop, key=drop.get)
  ours = ', '.join(f'{k} {100 * v:+.1f}' for k, v in drop.items())
  return [finding, paper, f'errors removed per 100 characters, by oracle: {ours}',
          'held' if top == 'n-gram' else f'not held (most: {top})',
          f"War and Peace, {_label(small)} against {_label(large)}, test split"]


def _label(n: dict) -> str:
  m = n['model']
  return f"{m['cell'].upper()} {m['num_layers']} x {m['hidden_size']}"


def side_by_side(results_dir: str) -> list[list]:
  """The rows of the section "The 2015 paper, side by side" (module docstring)."""
  inside = {c: _read_json(os.path.join(results_dir, f'paper_inside_{c}', 'inside.json'))
            for c in CORPORA}
  small = _read_json(os.path.join(results_dir, 'paper_inside_warpeace_small', 'inside.json'))
  rows = []
  for corpus in CORPORA:
    rows += _table1_rows(corpus, results_dir)
  for corpus in CORPORA:
    rows.append(_ngram_row(corpus, inside[corpus]))
  rows.append(_brace_row(inside['linux']))
  for corpus in ('linux', 'warpeace'):
    rows += _cell_rows(corpus, inside[corpus])
  rows.append(_saturation_row('linux', inside['linux']))
  rows.append(_errors_row(small, inside['warpeace']))
  return rows


# The runs behind the table, in the order docs/results/paper_2015/run.sh makes them.
RUNS = (('paper_inside_linux', 'the 2 x 256 LSTM on the Linux kernel'),
        ('paper_warpeace', 'Table 1 on War and Peace'),
        ('paper_inside_warpeace', 'the 2 x 256 LSTM on War and Peace'),
        ('paper_linux', 'Table 1 on the Linux kernel'))


def _machines(results: list[dict]) -> str:
  """'CPU (count)' for each machine the runs finished on, as results.json records it."""
  counts = collections.Counter(
      r['machine']['cpu'] if r.get('machine') else 'not recorded' for r in results)
  return ', '.join(f'{cpu} ({n})' for cpu, n in counts.most_common())


def training_time(results_dir: str) -> list[list]:
  """[run, finished trainings, hours of training, machines] of each run folder that
  exists: a Table 1 folder's trials/*/results.json, or an inside folder's results.json.
  Evaluation is not counted."""
  rows = []
  for name, what in RUNS:
    folder = os.path.join(results_dir, name)
    if name.startswith('paper_inside'):
      paths = [os.path.join(folder, 'results.json')]
    else:
      trials = os.path.join(folder, 'trials')
      paths = ([os.path.join(trials, t, 'results.json') for t in sorted(os.listdir(trials))]
               if os.path.isdir(trials) else [])
    results = [r for r in map(_read_json, paths) if r]
    if results:
      rows.append([what, len(results), sum(r['train_time_s'] for r in results) / 3600,
                   _machines(results)])
  return rows


def write(results_dir: str, out_dir: str, command: str = '') -> str:
  """report.md of `out_dir`: the side-by-side table."""
  os.makedirs(out_dir, exist_ok=True)
  rows = side_by_side(results_dir)
  lines = ['# The 2015 paper, side by side', '', *report.made_by(command),
           'Karpathy, Johnson and Fei-Fei (2015), "Visualizing and Understanding Recurrent'
           ' Networks": each finding, the paper\'s number, rnnlm\'s, and the setting it was'
           ' measured in. Losses are test cross-entropies in nats per character.', '']
  lines += report.table(['finding', 'paper', 'rnnlm', 'held?', 'setting'], rows)
  done = sum(r[2] != NOT_RUN for r in rows)
  lines += ['', f'{done} of {len(rows)} findings measured.']
  layout = table1_layout(results_dir)
  if layout:
    lines += ['', '## Table 1', '', 'Test loss of each model at its chosen rate, laid out as'
              " the paper's Table 1: a column per corpus and parameter budget (the count of a"
              ' 1-layer LSTM of 64 or 128 cells on that corpus). Each sweep\'s report has its'
              ' rates, steps and seeds.', '']
    lines += report.table(*layout)
    if any('(so far)' in str(v) for row in layout[1] for v in row):
      lines += ['', paper_table.SO_FAR_NOTE]
  hours = training_time(results_dir)
  if hours:
    lines += ['', '## Training time', '', 'Hours of training (evaluation not counted) of the'
              ' finished runs, as their results.json files record them; each Table 1'
              ' trial runs on one core, two side by side (but for epochs 43 to 52 of the Linux'
              ' LSTM 2 x 86 at 2.5e-4, epochs 4 on of the Linux RNN 1 x 275 at 2.5e-4 and'
              ' its whole run at 1.25e-4, run alone on both cores), each 2 x 256 LSTM on both'
              ' cores. Runs'
              ' that shared the machine with other work count their longer times: upper'
              ' bounds. Machines: the CPU each run finished on, as its results.json records it'
              ' ("not recorded": finished before results.json recorded it).', '']
    lines += report.table(['run', 'finished trainings', 'hours', 'machines'], hours, 3)
  return report.write(os.path.join(out_dir, 'report.md'), lines)
