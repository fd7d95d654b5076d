"""Emergence on the Linux kernel's C source: what a char LSTM learns, step by step.

  python experiments/emergence.py --config=configs/emergence/linux.py:cpu --workdir=runs/emergence_linux

:cpu trains a 2x256 LSTM for 2,000 steps on the first 50 MB of the kernel's .c/.h
files. Measured on a 2-core Intel Xeon CPU: about 12 minutes; validation loss 1.679 nats
(2.423 bits) per character; samples get C's layout but not its grammar
(docs/results.md). :full (3x512, 474 MB, 100k steps) is for an accelerator and has not
been run.
"""

import ml_collections

from configs import default


def get_config(preset: str = 'cpu'):
  config = default.get_config()
  config.data.name = 'linux'
  config.model.cell = 'lstm'
  config.eval.sample_prime = '\n'
  config.emergence = ml_collections.ConfigDict()
  # 'prose' or 'code': which measures apply.
  config.emergence.kind = 'code'
  # Training steps at which a sample is drawn and measured.
  config.emergence.steps = (100, 300, 500, 1000, 2000)
  # Sample: prime, length, seed and temperature (fixed, so samples are comparable).
  config.emergence.prime = '\n'
  config.emergence.sample_length = 3000
  config.emergence.seed = 0
  config.emergence.temperature = 0.8
  # Training characters used for the n-gram model and the word list.
  config.emergence.reference_chars = 2_000_000
  # Order of the character n-gram "how corpus-like" model.
  config.emergence.ngram_order = 5
  # Characters of each sample shown in the report.
  config.emergence.show_chars = 600
  # Keep the checkpoint of every measured step, so that experiments/look_inside.py
  # can show when each cell appears.
  config.checkpoint.keep_latest = 10
  if preset == 'cpu':  # About 15 minutes on a 2-core CPU.
    config.data.max_bytes = 50_000_000
    config.model.hidden_size = 256
    config.model.num_layers = 2
    config.train.num_steps = 2000
    config.eval.eval_every = 500
  elif preset == 'full':  # For an accelerator: the char-rnn scale.
    default.for_accelerator(config)
    config.data.max_bytes = 474_000_000
    config.model.hidden_size = 512
    config.model.num_layers = 3
    config.model.dropout = 0.25
    config.train.num_steps = 100_000
    config.emergence.steps = (100, 300, 1000, 3000, 10000, 30000, 100000)
    config.eval.eval_every = 5000
  else:
    raise ValueError(f'unknown preset {preset!r}; use cpu or full')
  return config
