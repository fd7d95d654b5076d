"""Hidden-size sweep on Shakespeare: validation loss against model size.

  python experiments/sweep.py --config=configs/sweeps/shakespeare_hidden.py:cpu --sweep_dir=runs/sweep_hidden

:cpu trains 2-layer LSTMs of 32 to 512 units for 800 steps (4M characters) each.
Measured on a 2-core AMD EPYC CPU: 18 minutes in all; best validation loss from
2.146 nats (26k parameters) to 1.524 (3.4M), fitted L(N) = 1.062 + 6.305 N^-0.173
(docs/results.md). :full (3 layers, up to 2048 units, 30k steps) is for an
accelerator and has not been run.
"""

import ml_collections

from configs import default
from configs import shakespeare
from rnnlm.studies import sweep


def get_config(preset: str = 'cpu'):
  config = ml_collections.ConfigDict()
  # The training config every trial starts from.
  config.base = shakespeare.get_config()
  config.base.model.dropout = 0.0
  config.base.train.lr_schedule = 'constant'
  config.base.eval.sample_length = 300
  config.sweep = ml_collections.ConfigDict()
  # The config field swept, and its values.
  config.sweep.field = 'model.hidden_size'
  config.sweep.grid = (32, 64, 128, 256, 512)
  # Trials run at once (each in its own process).
  config.sweep.trials_at_once = 1
  # Where trials run: local processes, or a SLURM job array (rnnlm.studies.sweep.executor_config),
  # e.g. --config.sweep.executor.kind=slurm --config.sweep.executor.gpus_per_trial=1
  config.sweep.executor = sweep.executor_config()
  # results.csv column for the x axis of the figure and the power-law fit.
  config.sweep.x_key = 'num_params'
  config.sweep.x_label = 'parameters'
  config.sweep.title = 'Shakespeare: best validation loss against hidden size'
  if preset == 'cpu':  # About 20 minutes on a 2-core CPU: 800 steps = 4M chars each.
    config.base.train.num_steps = 800
    config.base.eval.eval_every = 200
  elif preset == 'full':  # For an accelerator: to convergence, with dropout.
    default.for_accelerator(config.base)
    config.sweep.grid = (64, 128, 256, 512, 1024, 2048)
    config.base.model.num_layers = 3
    config.base.model.dropout = 0.25
    config.base.train.num_steps = 30000
    config.base.train.lr_schedule = 'cosine'
    config.base.eval.eval_every = 1000
  else:
    raise ValueError(f'unknown preset {preset!r}; use cpu or full')
  return config
