"""Runs a sweep (many training runs over a grid) and writes <sweep_dir>/report.md.

The config says which field is swept and over which values; run the same
command again to resume (finished trials are skipped, failed ones retried).

  python experiments/sweep.py --config=configs/sweeps/shakespeare_hidden.py:cpu --sweep_dir=runs/sweep_hidden
  python experiments/sweep.py --config=configs/sweeps/shakespeare_data.py:cpu --sweep_dir=runs/sweep_data

Logic: rnnlm/sweep.py.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from rnnlm import sweep
from rnnlm.errors import report_user_errors

_SWEEP_DIR = flags.DEFINE_string('sweep_dir', None, 'Directory of the sweep (resumed if it holds one).')
config_flags.DEFINE_config_file('config', None, 'Sweep config (configs/sweeps/<file>.py:<preset>).')
flags.mark_flags_as_required(['sweep_dir', 'config'])


@report_user_errors
def main(argv):
  del argv
  path = sweep.run_from_config(flags.FLAGS.config, _SWEEP_DIR.value,
                               command='python ' + ' '.join(sys.argv))
  print(f'report: {path}')


if __name__ == '__main__':
  app.run(main)
