"""Emergence on Shakespeare: words, then spelling, then the layout of a play.

  python experiments/emergence.py --config=configs/emergence/shakespeare.py:cpu --workdir=runs/emergence_shakespeare

:cpu trains a 2x256 LSTM for 2,000 steps (2.2 epochs). Measured on a 2-core AMD EPYC
CPU: about 8 minutes; validation 2.232 bits per character; the play's layout by step
300, 88% real words by step 2,000 (docs/results.md). :full has not been run.
"""

from configs.emergence import linux


def get_config(preset: str = 'cpu'):
  config = linux.get_config(preset)
  config.data.name = 'shakespeare'
  config.data.max_bytes = 0
  config.emergence.kind = 'prose'
  if preset == 'full':
    config.emergence.steps = (100, 300, 1000, 3000, 10000, 30000)
    config.train.num_steps = 30000
  return config
