"""Training-step time of config variants, in interleaved rounds on one device.

  python experiments/step_time.py --config=configs/shakespeare.py \
      --variants='none:model.dropout=0.0' --variants='bernoulli:impl.dropout=bernoulli' \
      --variants='lanes:impl.dropout=lanes'

Each variant is `name:field=value,...` over --config; prints a markdown table of
milliseconds per step, characters per second and the ratio to the first variant.
Logic: rnnlm/bench/step_time.py.
"""

import json

from absl import app, flags
from ml_collections import config_flags

from rnnlm.training import hostmem
from rnnlm.bench import step_time
from rnnlm.errors import UserError, report_user_errors

config_flags.DEFINE_config_file('config', 'configs/shakespeare.py', 'Training config.')
_VARIANTS = flags.DEFINE_multi_string('variants', None, 'name:field=value,... (repeatable).')
_ROUNDS = flags.DEFINE_integer('rounds', 7, 'Interleaved timed rounds (median reported).')
_STEPS = flags.DEFINE_integer('steps', 10, 'Training steps per round.')
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write the numbers here as JSON.')
flags.mark_flags_as_required(['variants'])


@report_user_errors
def main(argv):
  del argv
  if _ROUNDS.value < 1 or _STEPS.value < 1:
    raise UserError('--rounds and --steps must be >= 1')
  hostmem.retain_freed_memory()  # As experiments/train.py.
  rows = step_time.time_steps(flags.FLAGS.config, _VARIANTS.value, rounds=_ROUNDS.value,
                              steps=_STEPS.value)
  print('| variant | ms/step | chars/s | vs first |\n|---|---|---|---|')
  for r in rows:
    print(f"| {r['name']} | {r['ms_per_step']} | {r['chars_per_sec']:,} | {r['vs_first']} |")
  if _JSON_OUT.value:
    with open(_JSON_OUT.value, 'w') as f:
      json.dump(rows, f, indent=2)


if __name__ == '__main__':
  app.run(main)
