"""30 minutes of training on Shakespeare: a 2-layer, 384-unit GRU (1.46M parameters),
dropout 0.1, batch 50 x 100, peak learning rate 0.003, its cosine schedule laid over
the steps the budget allows (timed at the start and re-timed at 5, 25, 50, 75 and 90%;
evaluation not counted).

  python experiments/train.py --config=configs/shakespeare_30min.py --workdir=runs/shakespeare_30min

Measured on a 2-core AMD EPYC (AVX2 kernels), idle: 5,198 steps, best validation loss
1.382 nats per character, test 1.330 (docs/results/budget_30/avx2_kernels/).
"""

from configs import shakespeare_5min


def get_config():
  config = shakespeare_5min.get_config()
  config.model.hidden_size = 384
  config.train.learning_rate = 3e-3
  config.train.time_budget_minutes = 30.0
  return config
