"""Samples text from a trained model.

  python experiments/sample.py --workdir=runs/shakespeare --prime="ROMEO." \
      --temperature=0.8 --length=1000 --num_samples=2
  python experiments/sample.py --workdir=runs/linux --prime_file=kernel/fork.c --length=2000
"""

import sys

from absl import app, flags

from rnnlm.training import checkpoint
from rnnlm.training import evaluation
from rnnlm.training import sample
from rnnlm.errors import report_user_errors

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training run directory.')
_CHECKPOINT = flags.DEFINE_enum('checkpoint', 'best', ['best', 'latest'],
                                'Which checkpoint: lowest val loss, or the latest.')
_STEP = flags.DEFINE_integer('step', None, 'A specific checkpointed step (overrides --checkpoint).')
_PRIME = flags.DEFINE_string('prime', '\n', 'Text to start from (run through the model first).')
_PRIME_FILE = flags.DEFINE_string('prime_file', '', 'Start from the text of this file'
                                  ' (UTF-8) instead of --prime.')
_LENGTH = flags.DEFINE_integer('length', 1000, 'Characters to generate per sample.')
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 1, 'Samples generated as one batch.')
_TEMPERATURE = flags.DEFINE_float('temperature', 1.0, 'Softmax temperature (> 0).')
_TOP_K = flags.DEFINE_integer('top_k', 0, 'Keep only the k most likely characters (0: off).')
_TOP_P = flags.DEFINE_float('top_p', 1.0, 'Nucleus sampling mass in (0, 1] (1: off).')
_ARGMAX = flags.DEFINE_bool('argmax', False, 'Greedy decoding: always the most likely character.')
_SEED = flags.DEFINE_integer('seed', 0, 'Sampling seed; the same seed gives the same text.')
flags.mark_flags_as_required(['workdir'])


@report_user_errors
def main(argv):
  sample.check_sampling_args(_TEMPERATURE.value, _TOP_K.value, _TOP_P.value, _LENGTH.value,
                             _NUM_SAMPLES.value)
  model, vocab, step = checkpoint.load_model(_WORKDIR.value, _CHECKPOINT.value, _STEP.value)
  prime = _PRIME.value
  if _PRIME_FILE.value:  # Checked as evaluate.py checks a text: readable, in the vocabulary.
    prime = vocab.decode(evaluation.read_text(_PRIME_FILE.value, vocab, skip_unknown=False,
                                              fix='remove them from the file'))
  texts = sample.generate_text(
      model, vocab, prime, length=_LENGTH.value, num_samples=_NUM_SAMPLES.value,
      seed=_SEED.value, temperature=_TEMPERATURE.value, top_k=_TOP_K.value,
      top_p=_TOP_P.value, argmax=_ARGMAX.value)
  for i, text in enumerate(texts):
    if len(texts) > 1:
      sys.stdout.write(f'===== sample {i} (step {step}) =====\n')
    sys.stdout.write(text + '\n')


if __name__ == '__main__':
  app.run(main)
