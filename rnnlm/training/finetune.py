"""Starting a run from another run's parameters (`--config.init_from=WORKDIR`), as
char-rnn's `-init_from` and nanoGPT's `init_from` do, on the same or another corpus.

The recurrent weights carry over unchanged. The parameters indexed by character
(the first layer's one-hot rows of W_x, or the embedding table; the output
layer's columns and biases) are mapped by character: a character of the new
corpus that the old vocabulary has keeps its trained row, one it lacks keeps the
new run's fresh initialisation. The mapping is written to init_from.json.
"""

from __future__ import annotations

import json
import os

import numpy as np
from flax import nnx

from rnnlm.training import checkpoint
from rnnlm import config as config_lib
from rnnlm import data
from rnnlm.errors import UserError

SHAPE_FIELDS = ('arch', 'cell', 'hidden_size', 'num_layers', 'embed_dim')
TRANSFORMER_FIELDS = ('num_heads', 'context_length', 'positions')


def check_source(config) -> None:
  """Refuses an init_from run whose model differs in shape, before anything is written."""
  source = config_lib.load(config.init_from)
  fields = SHAPE_FIELDS + (TRANSFORMER_FIELDS if config.model.arch == 'transformer' else ())
  for field in fields:
    old, new = source.model[field], config.model[field]
    if old != new:
      raise UserError(f'init_from: the run in {config.init_from} has model.{field}={old!r}'
                      f' but this config has {new!r}; set --config.model.{field}={old!r}')


def transplant(params: nnx.State, vocab: data.Vocab, source_dir: str) -> tuple[nnx.State, dict]:
  """`params` (a fresh model's) with the best parameters of the run in `source_dir`.

  Returns:
    (params, record): record is what init_from.json holds.
  """
  source, old_vocab, step = checkpoint.load_model(source_dir, 'best')
  old = nnx.to_pure_dict(nnx.state(source, nnx.Param))
  new = nnx.to_pure_dict(params)
  old_index = {c: i for i, c in enumerate(old_vocab.chars)}
  pairs = [(i, old_index[c]) for i, c in enumerate(vocab.chars) if c in old_index]
  new_rows = np.array([i for i, _ in pairs], np.int64)
  old_rows = np.array([j for _, j in pairs], np.int64)

  one_hot = 'embed' not in new

  def take(path, old_value, new_value):
    old_value, new_value = np.asarray(old_value), np.asarray(new_value)
    by_char = _char_axis(path, new_value.ndim, one_hot)
    if by_char is None:
      if old_value.shape != new_value.shape:
        raise UserError(f'init_from: parameter {"/".join(map(str, path))} has shape'
                        f' {old_value.shape} in {source_dir} but {new_value.shape} here')
      return old_value
    out = np.array(new_value)
    index = [slice(None)] * out.ndim
    index[by_char] = new_rows
    source_index = [slice(None)] * out.ndim
    source_index[by_char] = old_rows
    out[tuple(index)] = old_value[tuple(source_index)]
    return out

  merged = _map_with_path(take, old, new)
  nnx.replace_by_pure_dict(params, merged)
  record = {'source': os.path.abspath(source_dir), 'source_step': int(step),
            'kept_chars': len(pairs), 'new_chars': [c for c in vocab.chars if c not in old_index],
            'dropped_chars': [c for c in old_vocab.chars if c not in set(vocab.chars)]}
  return params, record


def _char_axis(path: tuple, ndim: int, one_hot: bool) -> int | None:
  """The axis indexed by character of the parameter at `path`, or None."""
  names = [str(p) for p in path]
  if names[0] == 'embed':
    return 0  # [V, E]
  if names[0] == 'head':
    return ndim - 1  # kernel [H, V], bias [V]
  if one_hot and names[:2] == ['layers', '0'] and names[-1] == 'W_x':
    return 0  # One-hot input: [V, G*H], a row per character.
  return None


def _map_with_path(fn, old: dict, new: dict, path: tuple = ()):
  if isinstance(new, dict):
    missing = set(new) - set(old)
    if missing:
      raise UserError(f'init_from: parameters {sorted(map(str, missing))} are missing from the'
                      ' source run; its model differs from this one')
    return {k: _map_with_path(fn, old[k], v, path + (k,)) for k, v in new.items()}
  return fn(path, old, new)


def write_record(workdir: str, record: dict) -> None:
  data.atomic_write(os.path.join(workdir, 'init_from.json'), json.dumps(record, indent=2))
