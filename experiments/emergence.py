"""Trains one model and measures what emerges in its samples, step by step.

  python experiments/emergence.py --config=configs/emergence/linux.py:cpu --workdir=runs/emergence_linux

or, instead of training, measure the best model of every trial of a finished sweep:

  python experiments/emergence.py --config=configs/emergence/shakespeare.py:cpu --sweep_dir=runs/sweep_hidden

Writes <workdir>/emergence.md (table, figure, samples in order). Logic: rnnlm/studies/emergence_runs.py (runs) and rnnlm/studies/emergence.py (measures).
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from rnnlm.studies import emergence_runs
from rnnlm.errors import report_user_errors

_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (resumed if it holds one).')
_SWEEP_DIR = flags.DEFINE_string('sweep_dir', None,
                                 'Measure the trials of this finished sweep instead of training.')
config_flags.DEFINE_config_file('config', 'configs/emergence/linux.py:cpu', 'Emergence config.')
flags.mark_flags_as_mutual_exclusive(['workdir', 'sweep_dir'], required=True)


@report_user_errors
def main(argv):
  del argv
  command = 'python ' + ' '.join(sys.argv)
  config = flags.FLAGS.config
  if _SWEEP_DIR.value:
    path = emergence_runs.measure_sweep(_SWEEP_DIR.value, config.emergence, config.data, command)
  else:
    path = emergence_runs.run_emergence(config, _WORKDIR.value, command=command)
  print(f'report: {path}')


if __name__ == '__main__':
  app.run(main)
