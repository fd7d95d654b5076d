"""Emergence on Shakespeare: words, then spelling, then the layout of a play.

  python experiments/emergence.py --config=configs/emergence/shakespeare.py:cpu --workdir=runs/emergence_shakespeare
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
