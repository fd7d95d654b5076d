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
  assert step_time.parse_variant('k:impl.stack=4')[2] == {'stack': 4}
  for bad in ('x:model.dropout', 'x:impl.dropout=philox', 'x:impl.matmul=1',
              'x:impl.stack=0', 'x:impl.stack=two'):
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


def test_a_stacked_step_equals_separate_steps():
  from rnnlm.studies import sweep
  from rnnlm.training import parallel, train
  from rnnlm.training import steps as steps_lib
  config = sweep.apply_overrides(tiny.get_config(), {'model.dropout': 0.2,
                                                     'model.recurrence': 'scan'})
  mesh = parallel.make_mesh(jax.devices()[:1])
  splits = train.build_data(config)
  states = []
  for seed in (0, 1):
    _, graphdef, optimizer, state = steps_lib.create_train_state(
        sweep.apply_overrides(config, {'seed': seed}), len(splits.vocab),
        len(splits.train), 100, mesh)
    states.append(state)
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
  single, _ = steps_lib.compile_steps(graphdef, optimizer, mesh)
  both = step_time.stacked_train_step(graphdef, optimizer, mesh)
  for k in range(2):
    batch = steps_lib.device_batch(splits.train.window_at(k), mesh)
    states = [single(s, batch)[0] for s in states]
    stacked, metrics = both(stacked, batch)
  assert metrics['loss'].shape == (2,)
  for i, s in enumerate(states):
    for a, b in zip(jax.tree.leaves(s['params']), jax.tree.leaves(stacked['params'])):
      np.testing.assert_allclose(np.asarray(b[i]), np.asarray(a), rtol=2e-5, atol=2e-6)
  # The two models differ (their seeds), so the check above compares each to its own.
  a, b = (jax.tree.leaves(s['params'])[0] for s in states)
  assert not np.allclose(np.asarray(a), np.asarray(b))
