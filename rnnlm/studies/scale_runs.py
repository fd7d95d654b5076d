"""The scale experiments, each a sweep (`sweep`: one process per trial, results.csv,
resumable) that ends in a report.md with tables, fits and figures, built from a sweep
config whose `sweep.kind` names it:

- `paper_table`: the cell x depth x budget comparison of the 2015 paper;
- `joint`: the joint grid over parameters and data, with emergence maps;
- `architectures`: model families (2015 cells, minGRU, minLSTM, LRU, transformer)
  at equal parameter counts.

This module holds what they share and `run_from_config`, which picks one.
"""

from __future__ import annotations

import os

import ml_collections

from rnnlm.data import corpora
from rnnlm.errors import UserError

CELL_NAMES = {'rnn': 'RNN', 'lstm': 'LSTM', 'gru': 'GRU'}


def vocab_size(base: ml_collections.ConfigDict) -> int:
  return len(corpora.get_corpus(base.data).vocab)


def to_float(row: dict, key: str) -> float | None:
  v = row.get(key, '')
  return float(v) if v not in ('', None) else None


def best_at_first_eval(row: dict, eval_every: int) -> bool:
  """A trial whose best validation loss was its first evaluation (it overfit within
  one evaluation interval): its true minimum may lie earlier."""
  return int(row['best_step']) <= eval_every < int(row['final_step'])


def still_improving(row: dict) -> bool:
  """A trial the step cap stopped at its best evaluation so far: not converged."""
  return row['stopped'] == 'num_steps' and row['best_step'] == row['final_step']


def creeping(row: dict) -> bool:
  """A trial early stopping ended at its best evaluation: still improving, by less than
  `train.early_stopping_min_delta` over its last `early_stopping_patience` evaluations."""
  return row['stopped'] == 'early_stopping' and row['best_step'] == row['final_step']


def run_from_config(config: ml_collections.ConfigDict, sweep_dir: str, command: str = '') -> str:
  """Runs the scale experiment `config.sweep.kind` names and writes its report."""
  from rnnlm.studies import architectures, joint, paper_table
  kind = config.sweep.get('kind', 'field')
  if kind == 'paper_table':
    return paper_table.run_paper_table(config, sweep_dir, command)
  if kind == 'joint':
    return joint.run_joint(config, sweep_dir, command)
  if kind == 'architectures':
    return architectures.run_architectures(config, sweep_dir, command)
  raise UserError(f'unknown sweep.kind {kind!r}; use field, paper_table, joint or architectures')


def report_only(config: ml_collections.ConfigDict, sweep_dir: str, command: str = '') -> str:
  """The report of a paper_table sweep from what `sweep_dir` holds, running nothing."""
  from rnnlm.studies import paper_table
  if config.sweep.get('kind', 'field') != 'paper_table':
    raise UserError('--report_only is for paper_table sweeps; other sweeps write their'
                    ' report as each trial finishes')
  if not all(os.path.exists(os.path.join(sweep_dir, f)) for f in ('results.csv', 'budgets.json')):
    raise UserError(f'{sweep_dir} holds no results.csv and budgets.json; run the sweep first')
  paper_table.resolve_budgets(config.sweep, vocab_size(config.base), config.base.model.embed_dim)
  return paper_table.paper_report(sweep_dir, config.sweep, command)
