"""A model for 30 minutes of training on Shakespeare (a 2-core CPU).

  python experiments/train.py --config=configs/shakespeare_30min.py --workdir=runs/shakespeare_30min

The 5-minute recipe (configs/shakespeare_5min.py) grown with the budget: a 2-layer GRU
of 384 units (1.46M parameters, 2.2x the 256-unit GRU's 0.68M), peak learning rate
0.005, dropout 0.1, batch 50 x 100, the cosine schedule laid over the steps that 30
minutes of training allow (timed at the start, timed again on the run's own steps 5%
in, both recorded so that resume is exact; the run measured below had only the first
timing). Evaluation time is not counted. The width and rate were chosen from the
5-minute search's trend; configs/sweeps/shakespeare_budget.py:30 searches around them.

Measured from scratch with the command above on the 2-core Intel Xeon, nothing else
running: 4,574 steps in 1,804 s of training (the start's timing had laid the schedule
over 4,492), best validation loss 1.398 nats (2.017 bits) per character at step 4,500,
test 1.346. By 30 minutes the default config had 1.425, PyTorch char-rnn 1.459 and the
nanoGPT-style transformer 1.404 at 4 x 192 (docs/results.md, "Validation loss against
training minutes"). A second run, re-timed 5% in (the centre of the 30-minute search),
had 1.404 after 5,021 steps, test 1.355: this config and that peer are level. The target
of 1.35 was not reached; the 30-minute search's finished trials have not beaten this
recipe (docs/results.md, "Best validation loss in 30 minutes").
"""

from configs import shakespeare_5min


def get_config():
  config = shakespeare_5min.get_config()
  config.model.hidden_size = 384
  config.train.learning_rate = 5e-3
  config.train.time_budget_minutes = 30.0
  config.eval.eval_every = 500
  return config
