"""5 minutes of training on Shakespeare: a 2-layer, 256-unit GRU, dropout 0.1, batch
50 x 100, peak learning rate 0.006, its cosine schedule laid over the steps the budget
allows (timed at the start and re-timed at 5, 25, 50, 75 and 90%; evaluation not
counted).

  python experiments/train.py --config=configs/shakespeare_5min.py --workdir=runs/shakespeare_5min

Measured on a 2-core Intel Xeon (AVX-512), idle: best validation loss 1.482 nats per
character by 5 minutes (docs/results/time_to_quality/curves.json; docs/results.md,
"Best validation loss in 5, 15 and 30 minutes").
"""

from configs import shakespeare


def get_config():
  config = shakespeare.get_config()  # 2 x 256, dropout 0.1, batch 50 x 100, cosine.
  config.model.cell = 'gru'
  config.train.learning_rate = 6e-3
  config.train.time_budget_minutes = 5.0
  config.train.schedule_from_budget = True
  config.train.num_steps = 1_000_000  # The budget stops the run.
  config.eval.eval_every = 250
  config.eval.sample_length = 200
  return config
