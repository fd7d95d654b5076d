"""The findings of Karpathy, Johnson and Fei-Fei (2015) beside rnnlm's numbers.

  python experiments/paper_2015.py --results_dir=docs/results --out_dir=docs/results/paper_2015

Reads the Table 1 sweeps and the look_inside reports under --results_dir
(rnnlm/studies/paper_2015.py names them) and writes <out_dir>/report.md: one row per
finding, the paper's number, rnnlm's, held or not, and the setting. Then rewrites the
tables of --page marked `<!-- table from FILE -->` from FILE (this report's, the
Table 1 reports' and any other the page repeats), so the page repeats them as they are
(tests/test_docs.py checks it). The runs behind it,
in order: docs/results/paper_2015/run.sh.
"""

import os
import shlex
import sys

from absl import app, flags

from rnnlm.errors import UserError, report_user_errors
from rnnlm.studies import paper_2015, report

_RESULTS = flags.DEFINE_string('results_dir', 'docs/results', 'Where the result folders are.')
_OUT = flags.DEFINE_string('out_dir', 'docs/results/paper_2015', 'Where report.md goes.')
_PAGE = flags.DEFINE_string('page', 'docs/results.md',
                            'A page whose marked tables are rewritten from their reports'
                            ' ("" for none).')


@report_user_errors
def main(argv):
  del argv
  if not os.path.isdir(_RESULTS.value):
    raise UserError(f'--results_dir={_RESULTS.value} is not a directory; give the folder'
                    ' that holds paper_warpeace/ and the paper_inside_* folders')
  command = ' '.join(shlex.quote(a) for a in ['python', 'experiments/paper_2015.py',
                                                *sys.argv[1:]])
  print(f'report: {paper_2015.write(_RESULTS.value, _OUT.value, command)}')
  if _PAGE.value:
    if not os.path.isfile(_PAGE.value):
      raise UserError(f'--page={_PAGE.value} is not a file; give the results page or --page=""')
    try:
      changed = report.sync_copied_tables(_PAGE.value)
    except ValueError as e:
      raise UserError(f'{e}; fix the marker or the report') from None
    print(f'{_PAGE.value}: tables from {", ".join(changed) or "no report"} rewritten')


if __name__ == '__main__':
  app.run(main)
