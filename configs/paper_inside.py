"""The model Karpathy, Johnson and Fei-Fei (2015) look inside, at a size two CPU cores
train to its best within a few hours: a 2-layer LSTM of 256 cells, trained as the paper's
section 4.1 describes (configs/sweeps/paper_table.py: RMSProp, batches of 100 x 100,
the rate decayed by 0.95 an epoch after the 10th) until its validation loss stops
improving.

  python experiments/train.py --config=configs/paper_inside.py:linux --workdir=runs/paper_inside_linux
  python experiments/look_inside.py --workdir=runs/paper_inside_linux

Presets: linux (the kernel's files shuffled and cut to 6.2M characters, split 90/5/5,
as the paper's Table 1 and n-gram comparison) and warpeace (char-rnn's War and Peace,
split 80/10/10). Dropout 0.25 on every layer's output: the paper chose dropout on
validation per model; here one value is used, not searched. The learning rate is the
paper's, 2e-3. The results and the machine they ran on are in
docs/results/paper_inside_linux and docs/results/paper_inside_warpeace.
"""

from configs import shakespeare
from configs.sweeps import paper_table


def get_config(preset: str = 'linux'):
  config = paper_table.paper_training(shakespeare.get_config())
  config.model.cell = 'lstm'
  config.model.num_layers = 2
  config.model.hidden_size = 256
  config.model.dropout = 0.25
  config.data.max_chars = 0
  if preset == 'linux':
    paper_table.linux_paper_data(config)
  elif preset == 'warpeace':
    config.data.name = 'warpeace'
    config.eval.eval_every = 256  # About one epoch of the 2.56M training characters.
  else:
    raise ValueError(f'unknown preset {preset!r}; use linux or warpeace')
  config.eval.sample_length = 1000
  return config
