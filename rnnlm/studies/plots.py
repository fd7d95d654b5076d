"""Figures for sweeps and emergence runs (matplotlib, written as PNG)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np


def _plt():
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  return plt


def _save(plt, fig, path: str) -> str:
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def _axes_done(ax, x_label: str, y_label: str) -> None:
  ax.set_xlabel(x_label)
  ax.set_ylabel(y_label)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)


def sweep_figures(rows: Sequence[dict], x_key: str, x_label: str, fit: dict | None,
                  out_dir: str) -> list[str]:
  """Best val loss (and final train loss) against x, log x axis, with the fit."""
  if not rows:
    return []
  plt = _plt()
  rows = sorted(rows, key=lambda r: float(r[x_key]))
  x = np.array([float(r[x_key]) for r in rows])
  val = np.array([float(r['best_val_loss']) for r in rows])
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot(x, val, 'o-', label='best val loss')
  train = [r.get('final_train_loss') for r in rows]
  if all(t not in ('', None) for t in train):
    ax.plot(x, [float(t) for t in train], 's--', alpha=0.7, label='train loss (last interval)')
  if fit and 'error' not in fit:
    xx = np.geomspace(x.min(), x.max(), 100)
    ax.plot(xx, fit['L_inf'] + fit['a'] * xx ** (-fit['alpha']), ':',
            label=f"fit {fit['L_inf']:.2f} + a x^-{fit['alpha']:.2f}")
  ax.set_xscale('log')
  ax.set_xlabel(x_label)
  ax.set_ylabel('loss (nats/char)')
  ax.grid(alpha=0.3)
  ax.legend()
  return [_save(plt, fig, os.path.join(out_dir, f'loss_vs_{x_key}.png'))]


def emergence_figure(records: Sequence[dict], keys: Sequence[str], baseline: dict,
                     out_path: str, x_label: str = 'step') -> str:
  """One panel per measure against training step (log x); the corpus's value dashed."""
  plt = _plt()
  keys = [k for k in keys
          if any(isinstance(r.get(k), (int, float)) and np.isfinite(r[k]) for r in records)]
  if not keys:
    return ''
  fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.2), squeeze=False)
  steps = [r['step'] for r in records]
  for ax, k in zip(axes[0], keys):
    ax.plot(steps, [r.get(k, np.nan) for r in records], 'o-')
    if k in baseline and np.isfinite(baseline[k]):
      ax.axhline(baseline[k], color='gray', ls='--', label='corpus')
      ax.legend(fontsize=8)
    ax.set_xscale('log')
    ax.set_title(k, fontsize=10)
    ax.set_xlabel(x_label)
    ax.grid(alpha=0.3)
  return _save(plt, fig, out_path)


def training_curve(records: Sequence[dict], out_path: str, title: str = '') -> str:
  """Train and validation loss (nats/char) against step, from metrics.jsonl records."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(6, 3.6))
  steps = [r['step'] for r in records]
  ax.plot(steps, [r['train_loss'] for r in records], 's--', alpha=0.7,
          label='train (mean since last eval)')
  ax.plot(steps, [r['val_loss'] for r in records], 'o-', label='validation')
  if title:
    ax.set_title(title, fontsize=10)
  _axes_done(ax, 'step', 'loss (nats/char)')
  return _save(plt, fig, out_path)


def saturation_figure(saturation: dict, out_path: str) -> str:
  """Per layer, each gate unit's fraction of time left-saturated (x) against
  right-saturated (y): the paper's gate-saturation scatter."""
  plt = _plt()
  layers = sorted({layer for layer, _ in saturation})
  fig, axes = plt.subplots(1, len(layers), figsize=(3.6 * len(layers), 3.6), squeeze=False)
  colours = {'i': 'tab:blue', 'f': 'tab:red', 'o': 'tab:green', 'r': 'tab:purple',
             'z': 'tab:orange'}
  for ax, layer in zip(axes[0], layers):
    for (l, name), (left, right) in sorted(saturation.items()):
      if l == layer:
        ax.scatter(left, right, s=8, alpha=0.6, color=colours.get(name), label=f'{name} gate')
    ax.plot([0, 1], [1, 0], color='gray', lw=0.8, ls=':')
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f'layer {layer + 1}', fontsize=10)
    _axes_done(ax, 'fraction left-saturated (< 0.1)', 'fraction right-saturated (> 0.9)')
  return _save(plt, fig, out_path)


def bracket_figure(rows: Sequence[dict], out_path: str) -> str:
  """Mean probability difference (model - n-gram) of closing brackets against the
  distance to their opener, one line per bracket type."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(6, 3.8))
  for closer in sorted({r['closer'] for r in rows}):
    pts = [r for r in rows if r['closer'] == closer and r['count'] > 0]
    ax.plot([r['distance_mid'] for r in pts], [r['mean_diff'] for r in pts], 'o-',
            label=f"'{closer}'")
  ax.axhline(0, color='gray', lw=0.8)
  ax.set_xscale('log')
  _axes_done(ax, 'distance to the opening bracket (characters)', 'mean P(model) - P(n-gram)')
  return _save(plt, fig, out_path)


def error_figure(breakdowns: dict, out_path: str) -> str:
  """The 2015 paper's error bar chart: one bar per model, its errors (as a share of the
  characters) stacked oracle by oracle (`rnnlm.studies.inside.errors`)."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(2.2 + 1.4 * len(breakdowns), 4.2))
  names = list(breakdowns)
  oracles = [r['oracle'] for r in next(iter(breakdowns.values()))['oracles']]
  colours = plt.get_cmap('tab10').colors
  bottom = [0.0] * len(names)
  for k, oracle in enumerate(oracles):
    heights = []
    for b in breakdowns.values():
      row = next(r for r in b['oracles'] if r['oracle'] == oracle)
      heights.append(100 * row['errors'] / max(b['characters'], 1))
    ax.bar(range(len(names)), heights, bottom=bottom, color=colours[k % len(colours)],
           label=oracle, width=0.6)
    bottom = [b + h for b, h in zip(bottom, heights)]
  ax.set_xticks(range(len(names)), names)
  _axes_done(ax, '', 'errors, % of characters')
  ax.legend(fontsize=8, loc='center left', bbox_to_anchor=(1.0, 0.5))
  return _save(plt, fig, out_path)


def paper_figure(rows: Sequence[dict], out_path: str) -> str:
  """Test loss against parameters: a colour per cell, a line per depth."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  colours = {'rnn': 'tab:red', 'lstm': 'tab:blue', 'gru': 'tab:green'}
  styles = {1: ':', 2: '-', 3: '--'}
  groups = sorted({(r['cell'], int(r['num_layers'])) for r in rows})
  for cell, layers in groups:
    pts = sorted((int(r['num_params']), float(r['test_loss'])) for r in rows
                 if r['cell'] == cell and int(r['num_layers']) == layers)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], 'o', ls=styles.get(layers, '-.'),
            color=colours.get(cell), label=f'{cell.upper()} x{layers}')
  ax.set_xscale('log')
  _axes_done(ax, 'parameters', 'test loss (nats/char)')
  return _save(plt, fig, out_path)


def joint_loss_figure(loss: dict, fit: dict | None, out_path: str) -> str:
  """Two panels: loss against N, a line per data size D, and against D, a line per
  N; the fitted law dashed in the same colour. `loss` is {(N, D): loss}."""
  from rnnlm.studies import scaling
  plt = _plt()
  ns = sorted({n for n, _ in loss})
  ds = sorted({d for _, d in loss})
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  cmap = plt.get_cmap('viridis')
  for ax, (outer, inner, xlabel, key) in zip(axes, (
      (ds, ns, 'parameters N', lambda o, i: (i, o)),
      (ns, ds, 'training characters D', lambda o, i: (o, i)))):
    for j, o in enumerate(outer):
      colour = cmap(j / max(len(outer) - 1, 1))
      xs = [i for i in inner if key(o, i) in loss]
      ax.plot(xs, [loss[key(o, i)] for i in xs], 'o-', color=colour,
              label=f'{"D" if xlabel.startswith("param") else "N"} = {o:,}')
      if fit is not None and xs:
        grid = np.geomspace(min(inner), max(inner), 60)
        nn, dd = (grid, np.full_like(grid, o)) if xlabel.startswith('param') else (
            np.full_like(grid, o), grid)
        ax.plot(grid, scaling.predict(fit, nn, dd), '--', color=colour, alpha=0.7)
    ax.set_xscale('log')
    _axes_done(ax, xlabel, 'best validation loss (nats/char)')
  if fit is not None:
    fig.suptitle(f'dashed: the {fit["law"]} law fitted to all points', fontsize=10)
  return _save(plt, fig, out_path)


def heat_map(values: dict, ns: Sequence[int], ds: Sequence[int], title: str,
             out_path: str) -> str:
  """A map over (N rows, D columns) of {(N, D): (mean, low, high)}, each cell
  annotated with its mean (and range where there is one)."""
  plt = _plt()
  grid = np.full((len(ns), len(ds)), np.nan)
  for i, n in enumerate(ns):
    for j, d in enumerate(ds):
      if (n, d) in values:
        grid[i, j] = values[(n, d)][0]
  fig, ax = plt.subplots(figsize=(1.3 * len(ds) + 2, 0.8 * len(ns) + 1.6))
  im = ax.imshow(grid, origin='lower', aspect='auto', cmap='viridis')
  for (n, d), (mean, low, high) in values.items():
    i, j = ns.index(n), ds.index(d)
    text = f'{mean:.3g}' if low is None or high == low else f'{mean:.3g}\n[{low:.3g},{high:.3g}]'
    ax.text(j, i, text, ha='center', va='center', fontsize=7, color='w')
  ax.set_xticks(range(len(ds)), [f'{d:.2g}' for d in ds])
  ax.set_yticks(range(len(ns)), [f'{n:.2g}' for n in ns])
  ax.set_xlabel('training characters D')
  ax.set_ylabel('parameters N')
  ax.set_title(title, fontsize=10)
  fig.colorbar(im, ax=ax)
  return _save(plt, fig, out_path)


def frontier_figure(curves: Sequence[dict], front: Sequence[tuple], out_path: str) -> str:
  """Validation loss against training FLOPs for every trial (coloured by N), and the
  compute frontier."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  ns = sorted({c['num_params'] for c in curves})
  cmap = plt.get_cmap('viridis')
  labelled = set()
  for c in curves:
    colour = cmap(ns.index(c['num_params']) / max(len(ns) - 1, 1))
    label = None if c['num_params'] in labelled else f"N = {c['num_params']:,}"
    labelled.add(c['num_params'])
    ax.plot([p[0] for p in c['points']], [p[1] for p in c['points']], '-', color=colour,
            alpha=0.6, lw=1, label=label)
  if front:
    ax.plot([p[0] for p in front], [p[1] for p in front], 'k-', lw=2, label='frontier')
  ax.set_xscale('log')
  _axes_done(ax, 'training FLOPs (6 N x characters)', 'validation loss (nats/char)')
  return _save(plt, fig, out_path)


def family_figure(series: dict, x_label: str, y_label: str, out_path: str,
                  logx: bool = False) -> str | None:
  """One line per model family: series is {family: [(x, y), ...]}."""
  series = {k: v for k, v in series.items() if v}
  if not series:
    return None
  plt = _plt()
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for name, pts in series.items():
    ax.plot([p[0] for p in pts], [p[1] for p in pts], 'o-' if len(pts) < 12 else '-',
            ms=4, label=name)
  if logx:
    ax.set_xscale('log')
  _axes_done(ax, x_label, y_label)
  return _save(plt, fig, out_path)
