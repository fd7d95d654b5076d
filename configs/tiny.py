"""A tiny config for tests and smoke runs: a 2x32 LSTM, 20 steps on a 16 KB text.

  python experiments/train.py --config=configs/tiny.py --workdir=/tmp/tiny

A few seconds after compilation on a 2-core CPU; it learns nothing worth keeping
(validation loss a little under log(vocab)), which is its point.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'tiny'
  config.model.hidden_size = 32
  config.model.num_layers = 2
  config.train.batch_size = 4
  config.train.seq_length = 16
  config.train.num_steps = 20
  config.eval.eval_every = 10
  config.eval.batch_size = 4
  config.eval.sample_length = 40
  config.log_every = 5
  return config
