"""The runs that produce texts for the emergence measures (`rnnlm.studies.emergence`).

`run_emergence` trains one model and measures a fixed-seed sample at fixed
steps; `measure_sweep` measures one sample from the best checkpoint of every
finished trial of a sweep. Both write a markdown report with a figure.
"""

from __future__ import annotations

import csv
import json
import os

import ml_collections

from rnnlm.training import checkpoint
from rnnlm.data import corpora
from rnnlm.studies import emergence
from rnnlm.studies import plots
from rnnlm.studies import report
from rnnlm.training import sample
from rnnlm.training import train
from rnnlm.errors import UserError


class Reference:
  """What the measures compare a sample with: the training text's words and its
  n-gram model, and the corpus's own value of each measure on held-out text of
  the samples' length (the baseline row of a report)."""

  def __init__(self, data_config, e):
    corpus = corpora.get_corpus(data_config)
    train_tokens, val_tokens, _ = corpora.splits(corpus, data_config)
    text = corpus.vocab.decode(train_tokens[:e.reference_chars])
    self.kind = e.kind
    self.known = emergence.word_set(text)
    self.ngram = emergence.CharNGram(text, e.ngram_order)
    self.baseline = self.measure(corpus.vocab.decode(val_tokens[:e.sample_length]))
    self.keys = emergence.PROSE_KEYS if e.kind == 'prose' else emergence.CODE_KEYS

  def measure(self, text: str) -> dict:
    return emergence.measure(text, self.kind, known_words=self.known, ngram=self.ngram)


def _check_kind(e) -> None:
  if e.kind not in ('prose', 'code'):
    raise UserError(f"emergence.kind must be 'prose' or 'code', not {e.kind!r}")


def _read_records(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  by_step = {}
  with open(path) as f:
    for line in f:
      if line.strip():
        r = json.loads(line)
        by_step[r['step']] = r  # A resumed run re-measures a step: the last one wins.
  return [by_step[s] for s in sorted(by_step)]


def _sample(model, vocab, e) -> str:
  return sample.generate_text(model, vocab, e.prime, length=e.sample_length, seed=e.seed,
                              temperature=e.temperature)[0]


def run_emergence(config: ml_collections.ConfigDict, workdir: str, command: str = '') -> str:
  """Trains `config` in `workdir`, measuring a fixed-seed sample at `emergence.steps`.

  Writes emergence.jsonl (one record per step), emergence/step_NNNNNN.txt (the
  samples), emergence.png and emergence.md (table, corpus baseline, samples in
  order). Resumable like any run. Returns the report path.
  """
  e = config.emergence
  _check_kind(e)
  ref = Reference(config.data, e)
  os.makedirs(os.path.join(workdir, 'emergence'), exist_ok=True)
  records_path = os.path.join(workdir, 'emergence.jsonl')
  sample_path = lambda step: os.path.join(workdir, 'emergence', f'step_{step:06d}.txt')
  steps = set(e.steps)

  def callback(step, model, vocab, record):
    if step not in steps:
      return
    text = _sample(model, vocab, e)
    with open(sample_path(step), 'w') as f:
      f.write(text)
    rec = {'step': step, 'val_loss': record['val_loss'], 'val_bpc': record['val_bpc'],
           **ref.measure(text[len(e.prime):])}
    with open(records_path, 'a') as f:
      f.write(json.dumps(rec) + '\n')

  with config.unlocked():
    config.eval.eval_steps = tuple(sorted(steps))
    config.train.num_steps = max(config.train.num_steps, max(steps))
  train.train_and_evaluate(config, workdir, eval_callback=callback)

  records = _read_records(records_path)
  plots.emergence_figure(records, ref.keys, ref.baseline, os.path.join(workdir, 'emergence.png'))
  shown = [k for k in ref.keys if any(k in r for r in records)]
  m = config.model
  lines = [f'# Emergence: {config.data.name or config.data.path}, {m.cell}'
           f' {m.num_layers}x{m.hidden_size}', '', *report.made_by(command)]
  lines += report.table(['step', *shown], [[r['step'], *(r.get(k) for k in shown)]
                                           for r in records]
                        + [['corpus (val text)', *(ref.baseline.get(k) for k in shown)]], 3)
  lines += ['', '![emergence](emergence.png)', '', '## Evolution of samples during training', '',
            f'Seed {e.seed}, temperature {e.temperature}, prime {e.prime!r}; first'
            f' {e.show_chars} characters of each sample.', '']
  for r in records:
    with open(sample_path(r['step'])) as f:
      text = f.read()[:e.show_chars]
    lines += [f"### step {r['step']} (val {r['val_bpc']:.2f} bits/char)", '',
              *report.code_block(text), '']
  return report.write(os.path.join(workdir, 'emergence.md'), lines)


def measure_sweep(sweep_dir: str, emergence_config, data_config, command: str = '') -> str:
  """Measures one fixed-seed sample from each finished trial of a sweep.

  For every trial with results.json, restores its best checkpoint, draws a sample
  and measures it. Writes emergence_by_size.csv, .png and .md in `sweep_dir`.
  Returns the report path.
  """
  e = emergence_config
  _check_kind(e)
  trials_dir = os.path.join(sweep_dir, 'trials')
  if not os.path.isdir(trials_dir):
    raise UserError(f'{sweep_dir} holds no sweep (no trials/); run experiments/sweep.py first')
  ref = Reference(data_config, e)
  rows = []
  for name in sorted(os.listdir(trials_dir)):
    workdir = os.path.join(trials_dir, name)
    if not os.path.exists(os.path.join(workdir, 'results.json')):
      continue
    with open(os.path.join(workdir, 'results.json')) as f:
      results = json.load(f)
    model, vocab, step = checkpoint.load_model(workdir, 'best')
    text = _sample(model, vocab, e)
    rows.append({'name': name, 'num_params': results['num_params'], 'step': step,
                 'val_bpc': results['best_val_bpc'], **ref.measure(text[len(e.prime):]),
                 'sample': text[:e.show_chars]})
  rows.sort(key=lambda r: r['num_params'])
  with open(os.path.join(sweep_dir, 'emergence_by_size.csv'), 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=[k for k in rows[0] if k != 'sample'] if rows else ['name'],
                       extrasaction='ignore')
    w.writeheader()
    w.writerows(rows)
  plots.emergence_figure([dict(r, step=r['num_params']) for r in rows], ref.keys, ref.baseline,
                         os.path.join(sweep_dir, 'emergence_by_size.png'), x_label='parameters')
  shown = [k for k in ref.keys if any(k in r for r in rows)]
  lines = ['# Emergence against model size', '', *report.made_by(command)]
  lines += report.table(['trial', 'parameters', *shown],
                        [[r['name'], r['num_params'], *(r.get(k) for k in shown)] for r in rows]
                        + [['corpus (val text)', None, *(ref.baseline.get(k) for k in shown)]],
                        3)
  lines += ['', '![by size](emergence_by_size.png)', '', '## Samples by model size', '']
  for r in rows:
    lines += [f"### {r['name']} ({r['num_params']:,} parameters)", '',
              *report.code_block(r['sample']), '']
  return report.write(os.path.join(sweep_dir, 'emergence_by_size.md'), lines)
