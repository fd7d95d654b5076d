"""Looks inside a trained model: which cells track what, against n-gram baselines.

  python experiments/look_inside.py --workdir=runs/shakespeare
  python experiments/look_inside.py --workdir=runs/linux --text_file=some.c --out_dir=/tmp/inside
  python experiments/look_inside.py --workdir=runs/large --compare_with=runs/small/inside/inside.json

Writes <out_dir>/inside.html (open it from disk), inside.md, inside.json and the
figures. Logic: rnnlm/studies/inside/.
"""

import os
import sys

from absl import app, flags

from rnnlm.errors import UserError, report_user_errors
from rnnlm.studies.inside import study

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training run directory.')
_OUT_DIR = flags.DEFINE_string('out_dir', None, 'Where to write (default: <workdir>/inside).')
_TEXT_FILE = flags.DEFINE_string('text_file', '', 'A UTF-8 text to run the model over'
                                 ' (default: a split of the run\'s corpus).')
_SPLIT = flags.DEFINE_enum('split', 'test', ['train', 'val', 'test'],
                           'Which split of the corpus, without --text_file.')
_SKIP_UNKNOWN = flags.DEFINE_bool('skip_unknown', False,
                                  'Drop characters of --text_file outside the vocabulary.')
_TEXT_CHARS = flags.DEFINE_integer('text_chars', 600_000,
                                   'Use at most this many characters of the text (the n-gram'
                                   ' table still covers the whole val and test splits).')
_MAX_CHARS = flags.DEFINE_integer('max_chars', 120_000, 'Characters over which cells are scored.')
_PAGE_CHARS = flags.DEFINE_integer('page_chars', 4000, 'Characters shown on the page.')
_TOP = flags.DEFINE_integer('top', 3, 'Cells listed per feature.')
_MAX_ORDER = flags.DEFINE_integer('max_order', 20, 'Highest n-gram order of the baselines.')
_LAYER = flags.DEFINE_integer('layer', None, 'Also show this layer\'s (1-based) ...')
_UNIT = flags.DEFINE_integer('unit', None, '... unit (0-based) on the page.')
_COMPARE = flags.DEFINE_multi_string(
    'compare_with', [], 'inside.json of another model (an earlier look_inside run), drawn'
    ' beside this one in errors.png; repeat for more.')
flags.mark_flags_as_required(['workdir'])


@report_user_errors
def main(argv):
  for flag in (_TEXT_CHARS, _MAX_CHARS, _PAGE_CHARS, _TOP, _MAX_ORDER):
    if flag.value < 1:
      raise UserError(f'--{flag.name} must be at least 1 (got {flag.value})')
  path = study.inspect(
      _WORKDIR.value, _OUT_DIR.value or os.path.join(_WORKDIR.value, 'inside'),
      text_file=_TEXT_FILE.value, split=_SPLIT.value, skip_unknown=_SKIP_UNKNOWN.value,
      text_chars=_TEXT_CHARS.value, max_chars=_MAX_CHARS.value,
      page_chars=_PAGE_CHARS.value, top=_TOP.value,
      max_order=_MAX_ORDER.value, layer=_LAYER.value, unit=_UNIT.value,
      compare=tuple(_COMPARE.value),
      command='python ' + ' '.join(sys.argv))
  print(f'report: {path}')


if __name__ == '__main__':
  app.run(main)
