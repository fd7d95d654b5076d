"""The loss of a trained model on any text, with the state carried throughout."""

from __future__ import annotations

import math
import os

import numpy as np

from rnnlm.training import checkpoint
from rnnlm import config as config_lib
from rnnlm.data import corpora
from rnnlm import data
from rnnlm.errors import UserError
from rnnlm.model import activations


def read_text(path: str, vocab: data.Vocab, skip_unknown: bool,
              fix: str = 'pass --skip_unknown to drop them') -> np.ndarray:
  """A text file as token ids of `vocab`; `fix` ends the message on unknown characters.

  Raises:
    UserError: a missing, unreadable or empty file, or characters outside the
      vocabulary (unless `skip_unknown`, which drops them).
  """
  try:
    with open(path, encoding='utf-8') as f:
      text = f.read()
  except FileNotFoundError:
    raise UserError(f'no such text file: {path}') from None
  except UnicodeDecodeError:
    raise UserError(f'{path} is not UTF-8 text') from None
  except OSError as e:
    raise UserError(f'cannot read {path}: {e.strerror}') from None
  unknown = vocab.unknown_chars(text)
  if unknown and not skip_unknown:
    shown = ', '.join(map(repr, unknown[:10])) + (' ...' if len(unknown) > 10 else '')
    raise UserError(f'{path} has {len(unknown)} characters not in the model\'s vocabulary'
                    f' ({shown}); {fix}')
  if unknown:
    dropped = set(unknown)
    text = ''.join(ch for ch in text if ch not in dropped)
  return vocab.encode(text)


def split_tokens(workdir: str, split: str) -> np.ndarray:
  """A split of the corpus the run in `workdir` trained on."""
  if split not in ('train', 'val', 'test'):
    raise UserError(f'the split must be train, val or test (got {split!r})')
  config = config_lib.load(workdir)
  corpus = corpora.get_corpus(config.data)
  parts = dict(zip(('train', 'val', 'test'), corpora.splits(corpus, config.data)))
  return np.asarray(parts[split])


def evaluate(workdir: str, *, which: str = 'best', text_file: str = '', split: str = 'test',
             skip_unknown: bool = False, per_char_out: str = '') -> dict:
  """Loss of a checkpoint of `workdir` on a text file or a split, in nats and bits
  per character; with `per_char_out`, each character and its loss as TSV."""
  model, vocab, step = checkpoint.load_model(workdir, which)
  if per_char_out and not os.path.isdir(os.path.dirname(os.path.abspath(per_char_out))):
    raise UserError(f'--per_char_out: no directory {os.path.dirname(per_char_out)!r}')
  tokens = (read_text(text_file, vocab, skip_unknown) if text_file
            else split_tokens(workdir, split))
  if len(tokens) < 2:
    raise UserError(f'the text has {len(tokens)} characters; give at least 2')
  losses = activations.run_over_text(model, tokens, keep_states=False, top_k=1).loss_nats
  if per_char_out:
    with open(per_char_out, 'w', encoding='utf-8') as f:
      f.write('index\tchar\tloss_nats\n')
      for i, (t, loss) in enumerate(zip(tokens[1:], losses), start=1):
        f.write(f'{i}\t{vocab.chars[int(t)]!r}\t{loss:.5f}\n')
  loss = float(losses.mean())
  return {'workdir': workdir, 'step': step, 'text': text_file or f'{split} split',
          'characters_predicted': int(len(losses)), 'loss_nats': loss,
          'bits_per_char': loss / math.log(2)}
