"""The default job: a 2-layer, 256-unit LSTM on Shakespeare's complete works (5 MB).

  python experiments/train.py --workdir=runs/shakespeare

8,000 steps of 50 x 100 characters (8.8 epochs), dropout 0.1, cosine schedule.
Measured on a 2-core Intel Xeon (AVX-512): best validation loss 1.434 nats (2.068 bits)
per character at step 7,500 (docs/results/default_job/metrics.jsonl).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'shakespeare'
  config.model.cell = 'lstm'
  config.model.hidden_size = 256
  config.model.num_layers = 2
  config.model.dropout = 0.1
  config.train.batch_size = 50
  config.train.seq_length = 100
  config.train.num_steps = 8000
  config.train.lr_schedule = 'cosine'
  config.train.warmup_steps = 200
  config.train.end_lr_fraction = 0.05
  config.eval.eval_every = 500
  return config
