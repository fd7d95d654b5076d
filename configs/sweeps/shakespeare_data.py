"""Data-scale sweep on Shakespeare: validation loss against training characters.

The validation split is the same for every trial; each trial trains on a leading
fraction of the train split for the same number of steps, so small fractions are
seen for many epochs and overfit (the train/val gap in results.csv).

  python experiments/sweep.py --config=configs/sweeps/shakespeare_data.py:cpu --sweep_dir=runs/sweep_data
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
