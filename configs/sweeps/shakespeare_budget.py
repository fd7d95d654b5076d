"""The best recipe for a budget of training minutes on Shakespeare: a grid search.

  python experiments/sweep.py --config=configs/sweeps/shakespeare_budget.py:15 --sweep_dir=runs/budget_15

Every trial trains for the same number of minutes of training time (evaluation not
counted), with its learning-rate schedule laid over the steps the budget allows
(`train.schedule_from_budget`), and the trials are ranked by validation loss. The
preset is the budget in minutes (5, 15 or 30); the grid searches cell (LSTM or
GRU), width (larger for longer budgets), depth, dropout, batch width and peak
learning rate around the default job. Trials must run one at a
time on an otherwise idle machine, since each one's step count depends on its speed.
Not yet run.
"""

import ml_collections

from configs import shakespeare
from rnnlm import sweep


def get_config(preset: str = '15'):
  minutes = float(preset)
  config = ml_collections.ConfigDict()
  base = config.base = shakespeare.get_config()
  base.train.time_budget_minutes = minutes
  base.train.schedule_from_budget = True
  base.train.num_steps = 1_000_000  # The budget stops the run.
  base.train.lr_schedule = 'cosine'
  base.eval.eval_every = 250
  base.eval.sample_length = 200
  config.sweep = ml_collections.ConfigDict()
  config.sweep.title = f'Shakespeare: best validation loss in {minutes:g} minutes of training'
  # {field: values} searched over every combination (':' stands for '.' in keys).
  config.sweep.axes = {
      'model:cell': ('lstm', 'gru'),
      'model:hidden_size': {5.0: (192, 256, 384), 15.0: (256, 384, 512),
                            30.0: (384, 512, 768)}.get(minutes, (256, 384, 512)),
      'model:num_layers': (1, 2),
      'model:dropout': (0.0, 0.1, 0.2),
      # Wider batches use the matmuls better on a CPU; the rate grows with them.
      'train:batch_size': (50, 128),
      'train:learning_rate': (3e-3, 6e-3),
  }
  # A fixed random subset of the 144 combinations: 24, 12 and 8 trials for 5, 15
  # and 30 minutes (2, 3 and 4 hours on one machine).
  config.sweep.sample = {5.0: 24, 15.0: 12, 30.0: 8}.get(minutes, 12)
  config.sweep.trials_at_once = 1  # Timing: one trial at a time.
  config.sweep.executor = sweep.executor_config()
  return config
