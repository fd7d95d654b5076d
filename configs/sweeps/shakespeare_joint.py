"""Parameters x data on Shakespeare: every model size trained on every data size until
its validation loss stops improving; the joint laws L(N, D) of Kaplan et al. (2020)
and Hoffmann et al. (2022) fitted to the grid; what the samples show over it.

  python experiments/sweep.py --config=configs/sweeps/shakespeare_joint.py:cpu --sweep_dir=runs/joint

:cpu is 5 sizes of a 2-layer LSTM (32 to 384 units) x 5 prefixes of the train split
(1/81 to all of its 4.6M characters), early stopping with patience 3, at most 4,000
steps (20M characters), and 3 samples per trial for the emergence maps. Its result,
time and machine are in docs/results.md. :full (up to 1024 units, 6 data sizes, 30k
steps, batch 128) is for an accelerator and has not been run.
"""

import ml_collections

from configs import default
from configs import shakespeare
from configs.emergence import linux as emergence_defaults
from rnnlm.studies import sweep


def get_config(preset: str = 'cpu'):
  config = ml_collections.ConfigDict()
  # The training config every trial starts from.
  base = config.base = shakespeare.get_config()
  base.model.dropout = 0.0  # So that the data limit shows as overfitting.
  base.train.lr_schedule = 'cosine'  # Over the step cap; a trial may stop earlier.
  base.train.end_lr_fraction = 0.1
  base.train.early_stopping_patience = 3
  base.eval.sample_length = 200
  config.sweep = ml_collections.ConfigDict()
  # experiments/sweep.py runs this grid with rnnlm.studies.joint.
  config.sweep.kind = 'joint'
  config.sweep.title = 'Shakespeare: loss over model size x data size'
  config.sweep.hidden_sizes = (32, 64, 128, 256, 384)
  # Leading fractions of the train split (the validation and test splits are fixed).
  config.sweep.train_fractions = (1 / 81, 1 / 27, 1 / 9, 1 / 3, 1.0)
  config.sweep.trials_at_once = 1
  # Where trials run: local processes, or a SLURM job array (rnnlm.studies.sweep.executor_config),
  # e.g. --config.sweep.executor.kind=slurm --config.sweep.executor.gpus_per_trial=1
  config.sweep.executor = sweep.executor_config()
  # Bootstrap resamples for the intervals of the fitted constants.
  config.sweep.bootstrap = 200
  # Samples from each trial's best checkpoint, measured as the emergence runs do;
  # `seeds` samples per trial give each cell of the maps an interval.
  config.emergence = emergence_defaults.get_config('cpu').emergence
  config.emergence.kind = 'prose'
  config.emergence.sample_length = 2000
  config.emergence.seeds = (0, 1, 2)
  if preset == 'cpu':
    base.train.num_steps = 4000
    base.eval.eval_every = 200
  elif preset == 'full':  # For an accelerator; not yet run.
    config.sweep.hidden_sizes = (64, 128, 256, 512, 768, 1024)
    config.sweep.train_fractions = (1 / 243, 1 / 81, 1 / 27, 1 / 9, 1 / 3, 1.0)
    default.for_accelerator(base)
    base.train.num_steps = 30_000
    base.eval.eval_every = 500
  else:
    raise ValueError(f'unknown preset {preset!r}; use cpu or full')
  return config
