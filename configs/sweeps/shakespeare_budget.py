"""The best recipe for a budget of training minutes on Shakespeare: a search.

  python experiments/sweep.py --config=configs/sweeps/shakespeare_budget.py:5 --sweep_dir=runs/budget_5

Every trial trains for the same number of minutes of training time (evaluation not
counted), with its learning-rate schedule laid over the steps the budget allows
(`train.schedule_from_budget`), and the trials are ranked by validation loss. The
preset is the budget in minutes (5, 15 or 30).

The search is one field at a time (`sweep.search='coordinate'`): a centre recipe,
each other value of each field with the rest at the centre, then every field at its
best value together. At 5 minutes it covers cell (LSTM or GRU), width, depth,
dropout, batch width, peak learning rate and matmul precision (float32, or bfloat16
on AMX tiles where the CPU has them): 11 trials (10 without AMX) and the combination
(68 minutes; the result is in docs/results.md). At 15 and 30 minutes, where a trial costs 3 and 6
times as much, the centre is the config shipped for the budget when the search began
(both a 2-layer GRU with dropout 0.1 in float32: 256 units at rate 0.006 for 15
minutes, 384 at 0.005 for 30), so that the first trial is a second run of it and
measures the spread any gain must exceed; then dropout (0.2, 0.3; at 15 minutes 0.0,
0.2), one wider model, two rates, and the cell with its precision as pairs (LSTM in
float32, and in bfloat16 where the CPU has AMX tiles for it), in that order
(`sweep.order`; at 15 minutes the rate first, with only lower values, the 30-minute
search's gain): 8 trials (7 without AMX) and the combination, about 2.4 and 4.7
hours, resumable across stops. Trials must run one at a time on an otherwise idle
machine, since each one's step count depends on its speed.
`sweep.search='grid'` with `sweep.sample` searches a random subset of every
combination instead.
"""

import ml_collections

from configs import shakespeare
from rnnlm.model import kernels
from rnnlm.studies import sweep


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
  config.sweep.search = 'coordinate'
  # {field: values} searched one at a time from the centre (':' stands for '.').
  # bfloat16 runs kernels (the LSTM's, on AMX tiles) only where the CPU has AMX;
  # elsewhere it is the slower scan path, not worth a trial.
  bf16 = ('bfloat16',) if kernels.amx() else ()
  if minutes <= 5:
    config.sweep.centre = {'model:cell': 'lstm', 'model:hidden_size': 256,
                           'model:num_layers': 2, 'model:dropout': 0.1,
                           'train:batch_size': 50, 'train:learning_rate': 3e-3,
                           'model:compute_dtype': 'float32'}
    config.sweep.axes = {
        'model:cell': ('lstm', 'gru'),
        'model:hidden_size': (192, 256, 384),
        'model:num_layers': (1, 2),
        'model:dropout': (0.0, 0.1, 0.2),
        # Wider batches use the matmuls better but take fewer steps in a budget.
        'train:batch_size': (50, 128),
        'train:learning_rate': (2e-3, 3e-3, 6e-3),
        'model:compute_dtype': ('float32',) + bf16,
    }
  else:
    # Centred on the config shipped for the budget when the search began (the
    # 30-minute one has since moved to the search's rate 0.003), so that the first
    # trial is a second run of it (the run-to-run spread that any gain must exceed),
    # the fields in the order most likely to pay, since each trial costs the budget.
    # At 30 minutes dropout first (the run's training loss ended 0.14 below its
    # validation loss), then width, rate and the cell. At 15 the rate first, and only
    # lower ones (at 30 minutes, over a similar number of steps, 0.003 beat 0.005 by
    # several times the spread), and dropout 0.0 rather than 0.3 (0.2 lost at 30
    # minutes, no dropout won at 5).
    if minutes <= 15:
      width, wider, rate, rates, dropouts = 256, 320, 6e-3, (3e-3, 4e-3, 6e-3), (0.0, 0.1, 0.2)
      first = ('train:learning_rate', 'model:dropout', 'model:hidden_size')
    else:
      width, wider, rate, rates, dropouts = 384, 512, 5e-3, (3e-3, 5e-3, 8e-3), (0.1, 0.2, 0.3)
      first = ('model:dropout', 'model:hidden_size', 'train:learning_rate')
    config.sweep.centre = {'model:cell': 'gru', 'model:compute_dtype': 'float32',
                           'model:hidden_size': width, 'model:dropout': 0.1,
                           'train:learning_rate': rate}
    config.sweep.axes = {
        'model:dropout': dropouts,
        'model:hidden_size': (width, wider),
        'train:learning_rate': rates,
        # Cell and precision as pairs: bfloat16 kernels run the LSTM only, and a GRU
        # in bfloat16 would fall back to the slower scan path.
        'model:cell+model:compute_dtype': (('gru', 'float32'), ('lstm', 'float32'))
                                          + tuple(('lstm', d) for d in bf16),
    }
    config.sweep.order = first + ('model:cell+model:compute_dtype',)
  config.sweep.trials_at_once = 1  # Timing: one trial at a time.
  config.sweep.executor = sweep.executor_config()
  return config
