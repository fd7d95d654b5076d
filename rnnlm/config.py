"""Checks on a run's config, done once up front, and the config a workdir holds.

Every field is documented in `configs/default.py`.
"""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import ml_collections
from absl import logging

from rnnlm.model import cells
from rnnlm.model import recurrence
from rnnlm.model import transformer
from rnnlm.errors import UserError

# Fields that fix the shape of the saved state or the meaning of the data position:
# resuming a workdir with any of them changed is refused.
RESUME_FIELDS = ('model.arch', 'model.cell', 'model.hidden_size', 'model.num_layers',
                 'model.embed_dim', 'model.num_heads', 'model.context_length', 'model.positions',
                 'model.context_states',
                 'data.name', 'data.path', 'data.glob', 'data.split', 'data.train_fraction',
                 'data.max_bytes', 'data.max_chars',
                 'train.batch_size', 'train.seq_length')

_LEGACY_RECURRENCE_FIELDS = ('fast_recurrence', 'cpu_kernel')


def upgrade(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config` with fields of earlier versions mapped to today's.

  `model.fast_recurrence` and `model.cpu_kernel` became `model.recurrence`.
  """
  config = ml_collections.ConfigDict(config.to_dict())
  model = config.get('model') or {}
  legacy = {k: model[k] for k in _LEGACY_RECURRENCE_FIELDS if k in model}
  if legacy:
    config.model.recurrence = recurrence.from_legacy(legacy.get('fast_recurrence'),
                                                     legacy.get('cpu_kernel'))
    for k in legacy:
      del config.model[k]
    logging.warning('model.fast_recurrence and model.cpu_kernel are deprecated; read as'
                    ' model.recurrence=%r', config.model.recurrence)
  elif 'model' in config and 'recurrence' not in config.model:
    config.model.recurrence = 'auto'  # What a run of an earlier version did by default.
  if 'model' in config:
    for field, default in (('compute_dtype', 'float32'), ('arch', 'rnn'), ('num_heads', 4),
                           ('context_length', 128), ('positions', 'rotary'),
                           ('context_states', 'recompute')):
      if field not in config.model:
        config.model[field] = default

  if 'train' in config:  # Fields added later; their defaults are what earlier runs did.
    for field, default in (('early_stopping_patience', 0), ('time_budget_minutes', 0.0),
                           ('schedule_from_budget', False), ('adam_b1', 0.9),
                           ('adam_b2', 0.999), ('early_stopping_min_delta', 0.0),
                           ('early_stopping_start_epoch', 0.0),
                           ('stop_on_divergence', False)):
      if field not in config.train:
        config.train[field] = default
  if 'init_from' not in config:
    config.init_from = ''
  if 'data' in config:
    for field, default in (('max_chars', 0), ('download_from', '')):
      if field not in config.data:
        config.data[field] = default
  return config


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks every field a run reads; returns the `upgrade`d config.

  Raises:
    UserError: naming the field and what would be valid.
  """
  config = upgrade(config)
  m, t, e = config.model, config.train, config.eval
  if m.arch not in ('rnn', 'transformer'):
    raise UserError(f'unknown model.arch {m.arch!r}; use rnn or transformer')
  if m.arch == 'transformer':
    _check_transformer(m, t)
  elif m.cell not in cells.CELLS:
    raise UserError(f'unknown model.cell {m.cell!r}; use one of {", ".join(sorted(cells.CELLS))}')
  recurrence.check_choice(m.recurrence)
  if m.compute_dtype not in ('float32', 'bfloat16'):
    raise UserError(f'unknown model.compute_dtype {m.compute_dtype!r}; use float32 or bfloat16')
  for name, value in (('model.hidden_size', m.hidden_size), ('model.num_layers', m.num_layers),
                      ('train.batch_size', t.batch_size), ('train.seq_length', t.seq_length),
                      ('eval.eval_every', e.eval_every), ('eval.batch_size', e.batch_size),
                      ('model.unroll', m.unroll), ('log_every', config.log_every)):
    if not isinstance(value, int) or value < 1:
      raise UserError(f'{name} must be a positive integer (got {value!r})')
  if not isinstance(m.embed_dim, int) or m.embed_dim < 0:
    raise UserError(f'model.embed_dim must be 0 (one-hot) or more (got {m.embed_dim!r})')
  if not 0.0 <= m.dropout < 1.0:
    raise UserError(f'model.dropout must be in [0, 1) (got {m.dropout})')
  if t.learning_rate <= 0:
    raise UserError(f'train.learning_rate must be > 0 (got {t.learning_rate})')
  if t.num_steps < 0 or (t.num_steps == 0 and t.num_epochs <= 0):
    raise UserError('set train.num_steps > 0 or train.num_epochs > 0')
  if not isinstance(t.early_stopping_patience, int) or t.early_stopping_patience < 0:
    raise UserError('train.early_stopping_patience must be an integer >= 0 (0: off; got'
                    f' {t.early_stopping_patience!r})')
  if not t.early_stopping_start_epoch >= 0:
    raise UserError('train.early_stopping_start_epoch must be >= 0 epochs (got'
                    f' {t.early_stopping_start_epoch!r})')
  if not t.early_stopping_min_delta >= 0:
    raise UserError('train.early_stopping_min_delta must be >= 0 nats (got'
                    f' {t.early_stopping_min_delta!r})')
  if not t.time_budget_minutes >= 0:
    raise UserError('train.time_budget_minutes must be >= 0 (0: no limit; got'
                    f' {t.time_budget_minutes!r})')
  if t.optimizer not in ('adam', 'adamw', 'rmsprop'):
    raise UserError(f'unknown train.optimizer {t.optimizer!r}; use adam, adamw or rmsprop')
  for name in ('adam_b1', 'adam_b2'):
    if not 0 <= t[name] < 1:
      raise UserError(f'train.{name} must be in [0, 1) (got {t[name]!r})')
  if t.lr_schedule not in ('constant', 'exponential', 'cosine'):
    raise UserError(f'unknown train.lr_schedule {t.lr_schedule!r};'
                    ' use constant, exponential or cosine')
  if not isinstance(config.data.max_chars, int) or config.data.max_chars < 0:
    raise UserError(f'data.max_chars must be an integer >= 0 (0: all; got'
                    f' {config.data.max_chars!r})')
  if not 0 < config.data.train_fraction <= 1:
    raise UserError(f'data.train_fraction must be in (0, 1] (got {config.data.train_fraction})')
  if e.sample_temperature <= 0:
    raise UserError(f'eval.sample_temperature must be > 0 (got {e.sample_temperature})')
  if m.arch == 'rnn' and m.recurrence == 'kernel':  # Says why, if it cannot run.
    recurrence.resolve(m.recurrence, m.cell, m.hidden_size, jnp.dtype(m.compute_dtype))
  return config


def _check_transformer(m, t) -> None:
  for name, value in (('model.num_heads', m.num_heads), ('model.context_length', m.context_length)):
    if not isinstance(value, int) or value < 1:
      raise UserError(f'{name} must be a positive integer (got {value!r})')
  if m.hidden_size % m.num_heads:
    raise UserError(f'model.hidden_size={m.hidden_size} must be a multiple of'
                    f' model.num_heads={m.num_heads}')
  if m.positions not in ('learned', 'rotary'):
    raise UserError(f'unknown model.positions {m.positions!r}; use learned or rotary')
  if m.context_states not in transformer.CONTEXT_STATES:
    raise UserError(f'unknown model.context_states {m.context_states!r}; use'
                    f' {" or ".join(transformer.CONTEXT_STATES)}')
  if m.context_states == 'cached' and m.positions != 'rotary':
    raise UserError('model.context_states=cached needs model.positions=rotary (a cached state'
                    ' is reused at a new offset)')
  if m.positions == 'learned' and t.seq_length > m.context_length:
    raise UserError(f'train.seq_length={t.seq_length} is longer than model.context_length='
                    f'{m.context_length}; shorten it or use model.positions=rotary')


def _get(config, dotted: str):
  node = config
  for part in dotted.split('.'):
    node = node[part]
  return list(node) if isinstance(node, (tuple, list)) else node


def load(workdir: str) -> ml_collections.ConfigDict:
  """The (upgraded) config of the run in `workdir`."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise UserError(f'{workdir} holds no run (no config.json); give the --workdir of a'
                    ' training run')
  return upgrade(ml_collections.ConfigDict(_read_json(path)))


def _read_json(path: str) -> dict:
  try:
    with open(path) as f:
      value = json.load(f)
    if not isinstance(value, dict):
      raise ValueError('not a JSON object')
    return value
  except (ValueError, UnicodeDecodeError) as e:
    raise UserError(f'{path} is damaged (not a JSON object: {str(e)[:80]}); restore it from'
                    ' a copy of the workdir') from None


def check_resume_compatible(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Refuses to resume a workdir whose saved config differs in a shape field."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return
  try:
    old = _read_json(path)
  except UserError as e:
    # The checkpoint's own shapes are still checked before it is read, and config.json
    # is written again from this run's config.
    logging.warning('%s; resuming with the config given, checked against the checkpoint', e)
    return
  for field in RESUME_FIELDS:
    try:
      before = _get(old, field)
    except KeyError:
      continue
    now = _get(config, field)
    if before != now:
      raise UserError(
          f'config field {field} is {now!r} but the run in {workdir} used {before!r};'
          f' use a new --workdir, or --config.{field}={before!r} to resume it')
  # The optimizer state's structure: which optimizer, and whether clipping is on.
  t_old, t = old.get('train', {}), config.train
  if 'optimizer' in t_old and t_old['optimizer'] != t.optimizer:
    raise UserError(f'train.optimizer is {t.optimizer!r} but the run in {workdir} used'
                    f' {t_old["optimizer"]!r}; use a new --workdir, or'
                    f' --config.train.optimizer={t_old["optimizer"]} to resume it')
  if 'grad_clip_norm' in t_old and (t_old['grad_clip_norm'] > 0) != (t.grad_clip_norm > 0):
    raise UserError(f'the run in {workdir} used train.grad_clip_norm={t_old["grad_clip_norm"]};'
                    ' clipping cannot be turned on or off on resume (any value > 0 can'
                    ' change); use a new --workdir')
