"""Data-scale sweep on Shakespeare: validation loss against training characters.

The validation split is the same for every trial; each trial trains on a leading
fraction of the train split for the same number of steps, so small fractions are
seen for many epochs and overfit (the train/val gap in results.csv).

  python experiments/sweep.py --config=configs/sweeps/shakespeare_data.py:cpu --sweep_dir=runs/sweep_data

:cpu trains a 2x256 LSTM for 600 steps on 1% to 100% of the train split. Measured on
a 2-core AMD EPYC CPU: 16 minutes in all; best validation loss from 2.221 nats (45k
characters, overfitting) to 1.708 (4.6M) (docs/results.md). :full (hidden 1024) has
not been run.
"""

from configs.sweeps import shakespeare_hidden


def get_config(preset: str = 'cpu'):
  config = shakespeare_hidden.get_config(preset)
  config.sweep.field = 'data.train_fraction'
  config.sweep.grid = (0.01, 0.03, 0.1, 0.3, 1.0)
  config.sweep.x_key = 'train_split_chars'
  config.sweep.x_label = 'training characters available'
  config.sweep.title = 'Shakespeare: best validation loss against data size'
  config.base.model.hidden_size = 256
  if preset == 'cpu':  # About 15 minutes on a 2-core CPU.
    config.base.train.num_steps = 600
    config.base.eval.eval_every = 100
  else:
    config.base.model.hidden_size = 1024
  return config
