"""Then and now on Shakespeare: the 2015 cells (RNN, LSTM, GRU), the minimal
recurrences of 2024 (minGRU, minLSTM), the LRU (2023) and a small causal transformer, at equal
parameter counts, on the same data, split and clock.

  python experiments/sweep.py --config=configs/sweeps/architectures.py:cpu --sweep_dir=runs/architectures

The report gives the best validation loss of each family at each budget, its
training speed, and the lowest loss each family reached by each minute of training
(over all its sizes), with figures of loss against parameters and against minutes.
:cpu is 3 budgets (100k, 400k and 1.6M parameters), 1,500 steps of 50 x 100
characters each (7.5M characters, 1.6 epochs), without dropout, one trial at a
time. :full (to 25M parameters, 30k steps, batch 128) is for an accelerator and has
not been run.
"""

import ml_collections

from configs import default
from configs import shakespeare
from rnnlm.studies import sweep


def get_config(preset: str = 'cpu'):
  config = ml_collections.ConfigDict()
  base = config.base = shakespeare.get_config()
  base.model.dropout = 0.0
  base.train.lr_schedule = 'cosine'
  base.train.warmup_steps = 100
  base.train.end_lr_fraction = 0.1
  base.eval.sample_length = 200
  config.sweep = ml_collections.ConfigDict()
  # experiments/sweep.py runs this grid with rnnlm.studies.architectures.
  config.sweep.kind = 'architectures'
  config.sweep.title = 'Shakespeare: RNN, LSTM, GRU, minGRU, minLSTM, LRU and a transformer at equal size'
  # Each family: the config fields that make it (':' stands for '.'); its width is
  # chosen per budget. Recurrent families have 2 layers, as the base config.
  config.sweep.families = {
      'RNN': {'model:cell': 'rnn'},
      'LSTM': {'model:cell': 'lstm'},
      'GRU': {'model:cell': 'gru'},
      'minGRU': {'model:cell': 'mingru'},
      'minLSTM': {'model:cell': 'minlstm'},
      'LRU': {'model:cell': 'lru'},
      # nanoGPT's small character model: 4 pre-norm blocks, 4 heads, context 128,
      # its rate of 1e-3.
      'transformer': {'model:arch': 'transformer', 'model:num_layers': 4,
                      'model:num_heads': 4, 'model:context_length': 128,
                      'train:learning_rate': 1e-3},
  }
  config.sweep.budgets = (100_000, 400_000, 1_600_000)
  # Widths are multiples of this (16 lets the CPU kernels run); a transformer's
  # also of its head count.
  config.sweep.hidden_multiple = 16
  # The report's columns of loss reached by each minute of training.
  config.sweep.minute_marks = (1, 2, 5, 10)
  config.sweep.trials_at_once = 1  # One at a time: the minutes are compared.
  config.sweep.executor = sweep.executor_config()
  if preset == 'cpu':
    base.train.num_steps = 1500
    base.eval.eval_every = 250
  elif preset == 'full':  # For an accelerator; not yet run.
    default.for_accelerator(base)
    config.sweep.budgets = (400_000, 1_600_000, 6_400_000, 25_600_000)
    config.sweep.minute_marks = (5, 15, 30, 60)
    base.train.num_steps = 30_000
    base.eval.eval_every = 1000
  else:
    raise ValueError(f'unknown preset {preset!r}; use cpu or full')
  return config
