"""Validation loss against training minutes, for runs of any kind side by side.

Reads the `metrics.jsonl` that both `experiments/train.py` and `experiments/peers.py`
write (one record per evaluation, with `train_time_s`: training time so far,
evaluation not counted) and makes a table of the loss each run had reached by each
minute mark, its speed and size, and a figure of the curves.

The loss "by" a mark is the lowest validation loss among the evaluations made up to
the first one at or past the mark: what a user who stops the run at that minute
(and keeps its best checkpoint) has. A run that stopped before a mark has no entry
there (its budget was shorter), unless it stopped early for another reason
(patience, step cap) and then carries its best forward.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Sequence

from rnnlm.studies import report
from rnnlm.errors import UserError

MARKS = (5, 15, 30)


@dataclasses.dataclass
class Run:
  label: str
  workdir: str
  points: list[tuple[float, float]]  # (training minutes, validation loss) per evaluation.
  num_params: int | None
  chars_per_sec: float | None
  budget_minutes: float | None  # The run's time budget, if it had one.


def _read_json(path: str) -> dict:
  with open(path) as f:
    return json.load(f)


def load_run(label: str, workdir: str) -> Run:
  """A run of experiments/train.py or experiments/peers.py, from its workdir."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    raise UserError(f'{workdir} has no metrics.jsonl; pass the --workdir of a training'
                    ' or peers run')
  with open(path) as f:
    records = [json.loads(line) for line in f if line.strip()]
  records = [r for r in records if 'val_loss' in r and 'train_time_s' in r]
  if not records:
    raise UserError(f'{workdir}/metrics.jsonl has no evaluation with train_time_s yet;'
                    ' let the run reach its first evaluation')
  points = sorted((r['train_time_s'] / 60, float(r['val_loss'])) for r in records)
  results_path = os.path.join(workdir, 'results.json')
  results = _read_json(results_path) if os.path.exists(results_path) else {}
  num_params = results.get('num_params')
  chars_per_sec = budget = None
  if 'kind' in results:  # A PyTorch peer: its own cumulative rate; budget = its minutes.
    chars_per_sec = results.get('chars_per_sec')
    budget = results.get('train_time_s', 0) / 60 or None
  else:
    config_path = os.path.join(workdir, 'config.json')
    if os.path.exists(config_path):
      t = _read_json(config_path)['train']
      last = max(records, key=lambda r: r['step'])
      chars_per_sec = last['step'] * t['batch_size'] * t['seq_length'] / last['train_time_s']
      budget = t.get('time_budget_minutes') or None
  return Run(label, workdir, points, num_params, chars_per_sec, budget)


def loss_by(points: Sequence[tuple[float, float]], minute: float,
            budget_minutes: float | None = None) -> float | None:
  """The lowest loss among evaluations up to the first one at or past `minute`.

  None when the run never reached the mark because its time budget was shorter.
  """
  best = None
  for x, loss in sorted(points):
    best = loss if best is None else min(best, loss)
    if x >= minute:
      return best
  # The run ended before the mark: a shorter budget has nothing to show there;
  # a run that ended for another reason keeps its best.
  if budget_minutes is not None and budget_minutes < minute:
    return None
  return best


def first_reaching(points: Sequence[tuple[float, float]], target: float) -> float | None:
  """The training minute of the first evaluation at or below `target` (None: never)."""
  for x, loss in sorted(points):
    if loss <= target:
      return x
  return None


def write_report(runs: Sequence[Run], out_dir: str, marks: Sequence[float] = MARKS,
                 targets: Sequence[float] = (), command: str = '') -> str:
  """report.md, curves.json and loss_vs_minutes.png in out_dir; returns report.md's path."""
  from rnnlm.studies import plots
  os.makedirs(out_dir, exist_ok=True)
  lines = ['# Validation loss against training minutes', '', *report.made_by(command),
           'Loss (nats per character, validation split) each run had reached by each mark of'
           ' training time; evaluation time is not counted. "-": the run\'s budget ended'
           ' before the mark.', '']
  header = ['run', 'parameters', 'k chars/s', *(f'{m:g} min' for m in marks), 'best', 'at min']
  rows = []
  for r in runs:
    best_x, best = min(r.points, key=lambda p: p[1])
    rows.append([r.label, r.num_params,
                 None if r.chars_per_sec is None else round(r.chars_per_sec / 1000, 1),
                 *(loss_by(r.points, m, r.budget_minutes) for m in marks), best,
                 round(best_x, 1)])
  lines += report.table(header, rows)
  if targets:
    lines += ['', 'Training minutes to first reach a loss:', '']
    lines += report.table(['run', *(f'{t:g}' for t in targets)],
                          [[r.label, *(None if (x := first_reaching(r.points, t)) is None
                                       else round(x, 1) for t in targets)] for r in runs])
  with open(os.path.join(out_dir, 'curves.json'), 'w') as f:
    json.dump({r.label: {'workdir': r.workdir, 'points': r.points, 'num_params': r.num_params,
                         'chars_per_sec': r.chars_per_sec} for r in runs}, f, indent=1)
  figure = plots.family_figure({r.label: r.points for r in runs},
                               'training minutes (evaluation not counted)',
                               'validation loss (nats/char)',
                               os.path.join(out_dir, 'loss_vs_minutes.png'))
  if figure:
    lines += ['', f'![loss against minutes]({os.path.basename(figure)})']
  return report.write(os.path.join(out_dir, 'report.md'), lines)
