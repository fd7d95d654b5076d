"""The default job: a 2-layer LSTM on Shakespeare's complete works (5 MB).

Sized to train well on a 2-core CPU in under an hour; see the README's results.
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
