"""A model for 15 minutes of training on Shakespeare (a 2-core CPU).

  python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/shakespeare_15min

The 5-minute recipe (configs/shakespeare_5min.py: a 2-layer, 256-unit GRU, dropout 0.1,
batch 50 x 100, peak learning rate 0.006) with its cosine schedule laid over the steps
that 15 minutes of training allow (timed at the start, then fixed and recorded, so that
resume is exact). Evaluation time is not counted. It was carried over from the 5-minute
search, not searched at 15 minutes (configs/sweeps/shakespeare_budget.py:15 is that
search).
"""

from configs import shakespeare_5min


def get_config():
  config = shakespeare_5min.get_config()
  config.train.time_budget_minutes = 15.0
  config.eval.eval_every = 500
  return config
