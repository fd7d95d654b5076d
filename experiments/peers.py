"""Trains a PyTorch peer on rnnlm's data for a budget of minutes (needs the bench extra).

  python experiments/peers.py --kind=char_rnn --workdir=runs/peer_charrnn --minutes=30
  python experiments/peers.py --kind=transformer --workdir=runs/peer_gpt --minutes=30 \
      --hidden=256 --layers=4 --context=128 --batch=32

The corpus and split come from --config (default: the Shakespeare job's). Writes
metrics.jsonl (validation loss against training minutes) and results.json.
Logic: rnnlm/bench/peers.py.
"""

import importlib.util

from absl import app, flags
from ml_collections import config_flags

from rnnlm.training import hostmem
from rnnlm.bench import peers
from rnnlm.errors import UserError, report_user_errors

_KIND = flags.DEFINE_enum('kind', 'char_rnn', ['char_rnn', 'transformer'], 'Which peer.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.')
_MINUTES = flags.DEFINE_float('minutes', 30.0, 'Training time budget (evaluation not counted).')
_HIDDEN = flags.DEFINE_integer('hidden', 256, 'LSTM units, or the transformer width.')
_LAYERS = flags.DEFINE_integer('layers', 2, 'Layers (LSTM) or blocks (transformer).')
_HEADS = flags.DEFINE_integer('heads', 4, 'Attention heads (transformer).')
_CONTEXT = flags.DEFINE_integer('context', 128, 'Context length (transformer).')
_DROPOUT = flags.DEFINE_float('dropout', 0.0, 'Dropout rate.')
_BATCH = flags.DEFINE_integer('batch', 50, 'Streams (char-rnn) or windows (transformer) per step.')
_SEQ = flags.DEFINE_integer('seq_length', 100, 'Window length (char-rnn).')
_LR = flags.DEFINE_float('lr', None, 'Learning rate (default: 2e-3 char-rnn, 1e-3 transformer).')
_EVAL_EVERY = flags.DEFINE_float('eval_every_minutes', 2.5, 'Minutes of training between evaluations.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed.')
config_flags.DEFINE_config_file('config', 'configs/shakespeare.py', 'Its data section is used.')
flags.mark_flags_as_required(['workdir'])


@report_user_errors
def main(argv):
  del argv
  if importlib.util.find_spec('torch') is None:
    raise UserError("the peers need PyTorch: pip install torch==2.13.0 --index-url"
                    " https://download.pytorch.org/whl/cpu, then pip install -e '.[bench]'")
  if _MINUTES.value <= 0:
    raise UserError(f'--minutes must be > 0 (got {_MINUTES.value})')
  hostmem.retain_freed_memory()  # The same allocator setting as rnnlm's training.
  results = peers.train_peer(
      _KIND.value, flags.FLAGS.config.data, _WORKDIR.value, minutes=_MINUTES.value,
      hidden=_HIDDEN.value, layers=_LAYERS.value, heads=_HEADS.value, context=_CONTEXT.value,
      dropout=_DROPOUT.value, batch=_BATCH.value, seq=_SEQ.value, lr=_LR.value,
      eval_every_minutes=_EVAL_EVERY.value, seed=_SEED.value)
  print(results)


if __name__ == '__main__':
  app.run(main)
