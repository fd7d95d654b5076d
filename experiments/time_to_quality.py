"""Validation loss against training minutes for several runs, side by side.

  python experiments/time_to_quality.py --out=runs/minutes \
      --run='default=runs/shakespeare' --run='char-rnn 2x256=runs/peer_charrnn' \
      --run='15-minute config=runs/shakespeare_15min' --target=1.45 --target=1.40

Each --run is `label=workdir` of an experiments/train.py or experiments/peers.py run.
Writes report.md (the loss reached by 5, 15 and 30 minutes, speed, size, minutes to
each --target), curves.json and loss_vs_minutes.png under --out.
Logic: rnnlm/bench/time_to_quality.py.
"""

import shlex
import sys

from absl import app, flags

from rnnlm.bench import time_to_quality
from rnnlm.errors import UserError, report_user_errors

_RUNS = flags.DEFINE_multi_string('run', None, 'label=workdir (repeatable).')
_OUT = flags.DEFINE_string('out', None, 'Directory for report.md and the figure.')
_MARKS = flags.DEFINE_multi_float('mark', list(time_to_quality.MARKS), 'Minute marks.')
_TARGETS = flags.DEFINE_multi_float('target', [], 'Losses to time (repeatable).')
flags.mark_flags_as_required(['run', 'out'])


@report_user_errors
def main(argv):
  del argv
  runs = []
  for spec in _RUNS.value:
    label, sep, workdir = spec.partition('=')
    if not sep or not label or not workdir:
      raise UserError(f'--run={spec!r} is not label=workdir; e.g. --run=default=runs/shakespeare')
    runs.append(time_to_quality.load_run(label, workdir))
  command = ' '.join(shlex.quote(a) for a in ['python', 'experiments/time_to_quality.py',
                                                *sys.argv[1:]])
  path = time_to_quality.write_report(runs, _OUT.value, _MARKS.value, _TARGETS.value, command)
  with open(path) as f:
    print(f.read())


if __name__ == '__main__':
  app.run(main)
