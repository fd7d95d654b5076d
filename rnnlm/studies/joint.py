"""The joint grid over model size and data: loss against parameters and characters,
the joint scaling-law fits, and the emergence measures mapped over the grid."""

from __future__ import annotations

import json
import os
from typing import Sequence

import ml_collections
import numpy as np

from rnnlm.studies import report
from rnnlm.studies import scaling
from rnnlm.studies import sweep
from rnnlm.studies import scale_runs

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
    v = scale_runs.to_float(r, key)
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
  capped = {key for key, r in keyed.items() if scale_runs.still_improving(r)}
  first = {key for key, r in keyed.items() if scale_runs.best_at_first_eval(r, base.eval.eval_every)}
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
            'Training compute as 6 N x characters seen (`rnnlm.studies.scaling.training_flops`), over'
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
            if k != 'val_bpc' and any(scale_runs.to_float(r, k) is not None for r in samples)]
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
