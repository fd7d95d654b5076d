"""15 minutes of training on Shakespeare: a 2-layer, 320-unit GRU (1.03M parameters)
without dropout, batch 50 x 100, peak learning rate 0.006, its cosine schedule laid
over the steps the budget allows (timed at the start and re-timed at 5, 25, 50, 75 and
90%; evaluation not counted).

  python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/shakespeare_15min

Measured on a 2-core AMD EPYC (AVX2 kernels), idle, two runs: 3,719 and 3,712 steps,
best validation loss 1.411 and 1.410 nats per character, test 1.366 and 1.356
(docs/results/budget_15/avx2_kernels/).
"""

from configs import shakespeare_5min


def get_config():
  config = shakespeare_5min.get_config()
  config.model.hidden_size = 320
  config.model.dropout = 0.0
  config.train.time_budget_minutes = 15.0
  config.eval.eval_every = 500
  return config
