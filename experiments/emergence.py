"""Trains one model and measures what emerges in its samples, step by step.

  python experiments/emergence.py --config=configs/emergence/linux.py:cpu --workdir=runs/emergence_linux

Writes <workdir>/emergence.md (table, figure, samples in order). Logic: rnnlm/emergence.py.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from rnnlm import emergence
from rnnlm.errors import quiet_library_logs, report_user_errors

_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (resumed if it holds one).')
config_flags.DEFINE_config_file('config', 'configs/emergence/linux.py:cpu', 'Emergence config.')
flags.mark_flags_as_required(['workdir'])


@report_user_errors
def main(argv):
  del argv
  quiet_library_logs()
  path = emergence.run_emergence(flags.FLAGS.config, _WORKDIR.value,
                                 command='python ' + ' '.join(sys.argv))
  print(f'report: {path}')


if __name__ == '__main__':
  app.run(main)
