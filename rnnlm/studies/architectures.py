"""Model families at equal parameter counts: the 2015 cells beside minGRU, minLSTM,
the LRU and a transformer, each at its best learning rate."""

from __future__ import annotations

import json
import math
import os

import ml_collections

from rnnlm.studies import report
from rnnlm.studies import scaling
from rnnlm.studies import sweep
from rnnlm.studies import scale_runs

# ----------------------------------------------------------------------------
# Architectures at equal parameter counts: the 2015 cells and what came after


FAMILIES_FILE = 'families.json'


def architecture_grid(config: ml_collections.ConfigDict) -> list[tuple[str, int, dict]]:
  """(family, budget, overrides) for every family at every parameter budget, the
  width of each chosen so that its parameter count is the closest to the budget."""
  s, base = config.sweep, config.base
  vocab_size = scale_runs.vocab_size(base)
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
