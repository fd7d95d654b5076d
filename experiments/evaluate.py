"""Loss of a trained model on a text file or a split of its corpus.

  python experiments/evaluate.py --workdir=runs/shakespeare --split=test
  python experiments/evaluate.py --workdir=runs/shakespeare --text_file=sonnets.txt --per_char_out=/tmp/loss.tsv

Prints nats and bits per character over the whole text, read as one stream with the
state carried from the first character (the training run's own validation figure
reads a split as eval.batch_size parallel streams, so it differs slightly).
"""

import json

from absl import app, flags

from rnnlm.training import evaluation
from rnnlm.errors import report_user_errors

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training run directory.')
_CHECKPOINT = flags.DEFINE_enum('checkpoint', 'best', ['best', 'latest'],
                                'Which checkpoint: lowest val loss, or the latest.')
_TEXT_FILE = flags.DEFINE_string('text_file', '', 'A UTF-8 text (default: --split).')
_SPLIT = flags.DEFINE_enum('split', 'test', ['train', 'val', 'test'],
                           'Which split of the run\'s corpus, without --text_file.')
_SKIP_UNKNOWN = flags.DEFINE_bool('skip_unknown', False,
                                  'Drop characters of --text_file outside the vocabulary.')
_PER_CHAR_OUT = flags.DEFINE_string('per_char_out', '',
                                    'Write each character and its loss (nats) here, as TSV.')
flags.mark_flags_as_required(['workdir'])


@report_user_errors
def main(argv):
  del argv
  result = evaluation.evaluate(_WORKDIR.value, which=_CHECKPOINT.value,
                               text_file=_TEXT_FILE.value, split=_SPLIT.value,
                               skip_unknown=_SKIP_UNKNOWN.value,
                               per_char_out=_PER_CHAR_OUT.value)
  print(json.dumps(result, indent=2))


if __name__ == '__main__':
  app.run(main)
