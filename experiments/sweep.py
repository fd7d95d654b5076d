"""Runs a sweep (many training runs over a grid) and writes <sweep_dir>/report.md.

The config says what is swept: one field over a list of values, the cell x depth x
budget comparison of the 2015 paper (`sweep.kind='paper_table'`), a joint grid
over model size and data (`sweep.kind='joint'`), model families at equal parameter
counts (`sweep.kind='architectures'`), or a grid search (`sweep.axes`). Run the same command again to
resume (finished trials are skipped, interrupted ones resumed, failed ones retried).

  python experiments/sweep.py --config=configs/sweeps/shakespeare_hidden.py:cpu --sweep_dir=runs/sweep_hidden
  python experiments/sweep.py --config=configs/sweeps/paper_table.py:cpu --sweep_dir=runs/paper_table

Logic: rnnlm/studies/sweep.py, and rnnlm/studies/scale_runs.py with the study it names.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from rnnlm.studies import scale_runs
from rnnlm.studies import sweep
from rnnlm.errors import report_user_errors

_SWEEP_DIR = flags.DEFINE_string('sweep_dir', None, 'Directory of the sweep (resumed if it holds one).')
config_flags.DEFINE_config_file('config', None, 'Sweep config (configs/sweeps/<file>.py:<preset>).')
_REPORT_ONLY = flags.DEFINE_bool(
    'report_only', False, 'Write the report of a paper_table sweep from the results it'
    ' holds so far (finished trials only), without running anything.')
flags.mark_flags_as_required(['sweep_dir', 'config'])


@report_user_errors
def main(argv):
  del argv
  config, command = flags.FLAGS.config, 'python ' + ' '.join(sys.argv)
  if _REPORT_ONLY.value:
    path = scale_runs.report_only(config, _SWEEP_DIR.value, command)
  elif config.sweep.get('kind', 'field') == 'field':
    path = sweep.run_from_config(config, _SWEEP_DIR.value, command)
  else:
    path = scale_runs.run_from_config(config, _SWEEP_DIR.value, command)
  print(f'report: {path}')


if __name__ == '__main__':
  app.run(main)
