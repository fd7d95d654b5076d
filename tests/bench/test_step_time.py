"""Step timing of config variants: parsing, the dropout implementation switch, and a
tiny run that returns a row per variant."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from rnnlm.model import dropout as dropout_lib
from rnnlm.bench import step_time
from rnnlm.errors import UserError


def test_parse_variant():
  assert step_time.parse_variant('wide:model.hidden_size=512,model.cell=gru') == (
      'wide', {'model.hidden_size': 512, 'model.cell': 'gru'}, {})
  assert step_time.parse_variant('old:model.dropout=0.1,impl.dropout=bernoulli') == (
      'old', {'model.dropout': 0.1}, {'dropout': 'bernoulli'})
  for bad in ('x:model.dropout', 'x:impl.dropout=philox', 'x:impl.matmul=1'):
    with pytest.raises(UserError):
      step_time.parse_variant(bad)


def test_bernoulli_reference_keeps_at_the_same_rate():
  x = jnp.ones((100, 50, 64))
  key = jax.random.key(0)
  for impl in dropout_lib.IMPLEMENTATIONS.values():
    kept = float((impl(x, 0.2, key, 1) > 0).mean())
    assert abs(kept - 0.8) < 5 * np.sqrt(0.16 / x.size)


def test_variants_are_timed_and_the_dropout_switch_is_restored():
  base = tiny.get_config()
  rows = step_time.time_steps(base, ['plain:model.dropout=0.0',
                                     'old:model.dropout=0.3,impl.dropout=bernoulli',
                                     'new:model.dropout=0.3',
                                     'wide:train.batch_size=12,train.seq_length=5'],
                              rounds=2, steps=2)
  assert [r['name'] for r in rows] == ['plain', 'old', 'new', 'wide']
  assert rows[3]['chars_per_sec'] == pytest.approx(60 / (rows[3]['ms_per_step'] / 1000), rel=0.01)
  assert all(r['ms_per_step'] > 0 and len(r['round_ms']) == 2 for r in rows)
  for r in rows:  # Each variant's time against the first's.
    assert r['vs_first'] == pytest.approx(r['ms_per_step'] / rows[0]['ms_per_step'], rel=0.03)
  assert dropout_lib.dropout is dropout_lib.IMPLEMENTATIONS['lanes']
