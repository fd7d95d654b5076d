import hashlib
import itertools
import json
import math
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import tiny
from rnnlm.training import checkpoint
from rnnlm import config as config_lib
from rnnlm import data
from rnnlm.data import corpora
from rnnlm.training import parallel
from rnnlm.training import train
from rnnlm.errors import Diverged, Interrupted, UserError
from rnnlm.training import budget
from rnnlm.training import optim
from rnnlm.training import periodic
from rnnlm.training import run_files
from rnnlm.training import steps as steps_lib


def tiny_config(**overrides):
  config = tiny.get_config()
  for k, v in overrides.items():
    node = config
    *path, last = k.split('.')
    for p in path:
      node = node[p]
    node[last] = v
  return config


def _read_params(workdir, step=None):
  model, _, _ = checkpoint.load_model(workdir, 'latest', step)
  return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def _train_losses(config, vocab_size, stream, steps):
  """The losses of `steps` jitted train steps on one device, from a fresh state."""
  mesh = parallel.make_mesh(jax.devices()[:1])
  _, graphdef, optimizer, state = steps_lib.create_train_state(config, vocab_size, 1, 1, mesh)
  state['rng'] = jax.random.key(0)
  step = jax.jit(lambda s, b: steps_lib.train_step(s, b, graphdef=graphdef, optimizer=optimizer))
  losses = []
  for _ in range(steps):
    b = stream.next()
    state, m = step(state, {'inputs': b.inputs, 'targets': b.targets, 'mask': b.mask,
                            'reset': jnp.float32(b.reset)})
    losses.append(float(m['loss']))
  return losses


def test_tiny_model_overfits_short_text():
  text = 'the quick brown fox jumps over the lazy dog.\n' * 4
  vocab = data.Vocab.from_text(text)
  stream = data.BatchStream(vocab.encode(text), batch_size=4, seq_length=22)
  config = tiny_config(**{'model.hidden_size': 64, 'model.num_layers': 1,
                          'train.learning_rate': 1e-2, 'train.batch_size': 4})
  losses = _train_losses(config, len(vocab), stream, 300)
  assert losses[0] > 2.5  # About log(vocab) at the start.
  assert np.mean(losses[-len(stream):]) < 0.1


def test_schedules():
  t = tiny_config(**{'train.lr_schedule': 'exponential', 'train.decay_after_epochs': 2,
                     'train.decay_rate': 0.5, 'train.learning_rate': 1.0}).train
  s = optim.make_schedule(t, steps_per_epoch=10, num_steps=100)
  assert [float(s(i)) for i in (0, 19, 20, 29, 30, 45)] == [1, 1, 0.5, 0.5, 0.25, 0.125]
  t = tiny_config(**{'train.lr_schedule': 'cosine', 'train.warmup_steps': 10,
                     'train.learning_rate': 2.0, 'train.end_lr_fraction': 0.1}).train
  s = optim.make_schedule(t, steps_per_epoch=10, num_steps=110)
  np.testing.assert_allclose([float(s(i)) for i in (0, 5, 10, 60, 110)],
                             [0, 1.0, 2.0, 0.2 + 1.8 * 0.5, 0.2], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('optimizer', ['adam', 'adamw'])
def test_adam_moment_decays_match_numpy(optimizer):
  """train.adam_b1/adam_b2 reach the optimizer: three updates with b1 0.8, b2 0.99
  (and decoupled decay for adamw), clipping off, against Adam written out in float64."""
  t = tiny_config(**{'train.optimizer': optimizer, 'train.adam_b1': 0.8,
                     'train.adam_b2': 0.99, 'train.weight_decay': 0.1,
                     'train.grad_clip_norm': 0.0}).train
  lr = [0.1, 0.05, 0.02]
  opt = optim.make_optimizer(t, lambda count: jnp.asarray(lr)[count])
  rng = np.random.default_rng(0)
  grads = rng.normal(size=(3, 5)) * np.array([1e-3, 1e-1, 1.0, 10.0, 100.0])
  p = np.array([0.5, -1.0, 2.0, 0.0, 3.0])
  params = jnp.asarray(p, jnp.float32)
  state = opt.init(params)
  m = v = np.zeros(5)
  for i, g in enumerate(grads):
    updates, state = opt.update(jnp.asarray(g, jnp.float32), state, params)
    params = params + updates
    m = 0.8 * m + 0.2 * g
    v = 0.99 * v + 0.01 * g * g
    step = (m / (1 - 0.8 ** (i + 1))) / (np.sqrt(v / (1 - 0.99 ** (i + 1))) + 1e-8)
    p = p - lr[i] * (step + (0.1 * p if optimizer == 'adamw' else 0.0))
  np.testing.assert_allclose(np.asarray(params), p, rtol=1e-5, atol=1e-6)


def _event_steps(workdir):
  """{tag: [steps]} of the scalars in a workdir's TensorBoard event file (TFRecord
  framing: length, its CRC, an Event protobuf, its CRC)."""
  import struct
  from tensorboardX.proto import event_pb2
  path = next(os.path.join(workdir, f) for f in os.listdir(workdir)
              if f.startswith('events.out.tfevents'))
  tags = {}
  with open(path, 'rb') as f:
    while header := f.read(12):
      (length,) = struct.unpack('<Q', header[:8])
      event = event_pb2.Event.FromString(f.read(length))
      f.read(4)
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(event.step)
  return tags


def test_run_writes_workdir(tmp_path):
  wd = str(tmp_path / 'run')
  results = train.train_and_evaluate(tiny_config(), wd)
  for f in ('config.json', 'vocab.json', 'metrics.jsonl', 'results.json',
            'samples/step_000010.txt', 'samples/step_000020.txt'):
    assert os.path.exists(os.path.join(wd, f)), f
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(wd))
  records = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  assert [r['step'] for r in records] == [10, 20]
  for key in ('epoch', 'train_loss', 'val_loss', 'val_bpc', 'chars_per_sec', 'elapsed_s',
              'learning_rate', 'grad_norm'):
    assert key in records[0]
  assert records[0]['learning_rate'] == pytest.approx(2e-3)  # tiny: constant schedule.
  assert records[0]['grad_norm'] > 0
  # Per-step training scalars (every log_every = 5 steps) in the TensorBoard events.
  tags = _event_steps(wd)
  assert tags['train/learning_rate'] == tags['train/grad_norm'] == [5, 10, 15, 20]
  assert tags['val_loss'] == [10, 20]
  r = records[-1]
  assert r['val_bpc'] == pytest.approx(r['val_loss'] / np.log(2))
  assert r['val_loss'] < np.log(len(data.Vocab.load(os.path.join(wd, 'vocab.json'))))
  assert results['best_step'] in (10, 20) and 'test_loss' in results
  # Where it finished, for reports that sum runs made on several machines.
  m = json.load(open(os.path.join(wd, 'results.json')))['machine']
  assert m['backend'] == jax.default_backend() and m['cores'] == os.cpu_count()
  assert m['device_kind'] == jax.devices()[0].device_kind and m['cpu']
  assert m['cpu_kernels'] in (None, 'avx512', 'avx2', 'scalar')
  # Which bytes it trained on: the corpus text's sha256, computed here independently.
  assert results['corpus_sha256'] == hashlib.sha256(corpora.tiny_text().encode()).hexdigest()


def test_exact_resume_after_interruption(tmp_path):
  config = tiny_config(**{'model.dropout': 0.2, 'train.num_steps': 25, 'eval.eval_every': 5})
  straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
  train.train_and_evaluate(config, straight)
  # "Preempted" after step 13: the last checkpoint is step 10, steps 11-13 are lost.
  train.train_and_evaluate(config, resumed, stop_after_step=13)
  assert checkpoint.Checkpointer(resumed).latest_step() == 10
  train.train_and_evaluate(config, resumed)
  a, b = _read_params(straight), _read_params(resumed)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)  # Bit for bit.
  strip = lambda r: {k: v for k, v in r.items()
                     if k not in ('chars_per_sec', 'elapsed_s', 'train_time_s')}
  ma = [strip(json.loads(l)) for l in open(os.path.join(straight, 'metrics.jsonl'))]
  mb = [strip(json.loads(l)) for l in open(os.path.join(resumed, 'metrics.jsonl'))]
  assert ma == mb


def test_best_and_latest_checkpoints_kept(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path), keep_latest=2)
  state = {'w': jnp.arange(3.0)}
  for step, loss in [(1, 3.0), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0)]:
    ckpt.save(step, {'w': state['w'] * step}, {'step': step}, loss)
  ckpt.wait()
  assert ckpt.best_step() == 2
  assert sorted(ckpt.all_steps()) == [2, 4, 5]
  restored, meta = ckpt.restore(2, state)
  np.testing.assert_array_equal(restored['w'], np.arange(3.0) * 2)  # Round trip.
  assert meta == {'step': 2}


def test_four_devices_give_the_same_losses_as_one(tmp_path):
  assert len(jax.devices()) == 4, 'conftest forces 4 host devices'
  config = tiny_config(**{'train.num_steps': 10, 'eval.eval_every': 5})
  one = train.train_and_evaluate(config, str(tmp_path / 'one'), devices=jax.devices()[:1])
  four = train.train_and_evaluate(config, str(tmp_path / 'four'), devices=jax.devices())
  read = lambda d: [json.loads(l) for l in open(os.path.join(tmp_path, d, 'metrics.jsonl'))]
  for a, b in zip(read('one'), read('four')):
    np.testing.assert_allclose([a['train_loss'], a['val_loss']],
                               [b['train_loss'], b['val_loss']], rtol=1e-5)
  assert one['test_loss'] == pytest.approx(four['test_loss'], rel=1e-5)


def test_a_batch_that_does_not_divide_is_padded_with_the_same_losses(tmp_path):
  # Batch 6 over 4 devices: 8 rows, 2 of them masked. Trained 10 steps on one device,
  # then resumed on 4 (the carry's padding rows change), it matches 20 steps on one.
  config = lambda steps: tiny_config(**{'train.batch_size': 6, 'eval.batch_size': 5,
                                        'train.num_steps': steps, 'eval.eval_every': 5})
  one = train.train_and_evaluate(config(20), str(tmp_path / 'one'), devices=jax.devices()[:1])
  wd = str(tmp_path / 'mixed')
  train.train_and_evaluate(config(10), wd, devices=jax.devices()[:1])
  mixed = train.train_and_evaluate(config(20), wd, devices=jax.devices())
  read = lambda d: [json.loads(l) for l in open(os.path.join(tmp_path, d, 'metrics.jsonl'))]
  assert [r['step'] for r in read('mixed')] == [5, 10, 15, 20]
  for a, b in zip(read('one'), read('mixed')):
    np.testing.assert_allclose([a['train_loss'], a['val_loss']],
                               [b['train_loss'], b['val_loss']], rtol=1e-5)
  assert one['test_loss'] == pytest.approx(mixed['test_loss'], rel=1e-5)


def test_best_checkpoint_saved_on_other_device_count_is_evaluated(tmp_path):
  # Saved on 4 devices (batch 6: carry of 8 rows), finished again on 1 (6 rows): the
  # test split is evaluated from the best checkpoint with the same result.
  config = tiny_config(**{'train.batch_size': 6, 'eval.batch_size': 5,
                          'train.num_steps': 10, 'eval.eval_every': 5})
  wd = str(tmp_path / 'run')
  four = train.train_and_evaluate(config, wd, devices=jax.devices())
  one = train.train_and_evaluate(config, wd, devices=jax.devices()[:1])
  assert one['best_step'] == four['best_step']
  assert one['test_loss'] == pytest.approx(four['test_loss'], rel=1e-5)


def test_resume_with_other_shape_is_refused_and_changes_nothing(tmp_path):
  wd = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(**{'train.num_steps': 10}), wd)
  before = {os.path.join(r, f): open(os.path.join(r, f), 'rb').read()
            for r, _, fs in os.walk(wd) for f in fs}
  with pytest.raises(UserError, match='model.hidden_size'):
    train.train_and_evaluate(tiny_config(**{'model.hidden_size': 48}), wd)
  after = {os.path.join(r, f): open(os.path.join(r, f), 'rb').read()
           for r, _, fs in os.walk(wd) for f in fs}
  assert before == after


@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
def test_fast_path_trains_like_reference(cell):
  text = 'To be, or not to be, that is the question:\n' * 20
  vocab = data.Vocab.from_text(text)
  tokens = vocab.encode(text)
  curves = []
  # Reference (autodiff of lax.scan), custom-VJP scan, and (on the CPU) the compiled
  # kernels.
  for impl in ('reference', 'scan', 'auto'):
    config = tiny_config(**{'model.cell': cell, 'model.recurrence': impl,
                            'model.dropout': 0.1, 'train.learning_rate': 1e-2})
    curves.append(_train_losses(config, len(vocab), data.BatchStream(tokens, 4, 16), 8))
  np.testing.assert_allclose(curves[1], curves[0], rtol=1e-5)
  np.testing.assert_allclose(curves[2], curves[0], rtol=1e-5)
  assert curves[0][-1] < curves[0][0]


def test_train_fraction_uses_a_prefix_of_the_train_split(tmp_path):
  full = train.train_and_evaluate(tiny_config(**{'train.num_steps': 2, 'eval.eval_every': 2}),
                                  str(tmp_path / 'full'))
  half = train.train_and_evaluate(tiny_config(**{'train.num_steps': 2, 'eval.eval_every': 2,
                                                 'data.train_fraction': 0.5}),
                                  str(tmp_path / 'half'))
  assert half['train_split_chars'] == round(full['train_split_chars'] * 0.5)
  # The train stream reads the first half of the full one's text; val and test are the same.
  splits = {k: train.build_data(tiny_config(**{'data.train_fraction': f}))
            for k, f in (('full', 1.0), ('half', 0.5))}
  half_train = np.asarray(splits['half'].train.tokens)
  assert len(half_train) == half['train_split_chars']
  np.testing.assert_array_equal(half_train, np.asarray(splits['full'].train.tokens)[:len(half_train)])
  for part in ('val', 'test'):
    np.testing.assert_array_equal(np.asarray(getattr(splits['half'], part).tokens),
                                  np.asarray(getattr(splits['full'], part).tokens))
  with pytest.raises(UserError, match='train_fraction'):
    train.train_and_evaluate(tiny_config(**{'data.train_fraction': 0.0}), str(tmp_path / 'bad'))


def test_interrupt_saves_a_checkpoint_and_resume_finishes(tmp_path):
  wd = str(tmp_path / 'run')
  config = tiny_config(**{'train.num_steps': 12, 'eval.eval_every': 4})

  def interrupt(step, model, vocab, record):
    if step == 8:  # Ctrl-C during the evaluation at step 8: it stops there, saved.
      signal.raise_signal(signal.SIGINT)

  # As in a terminal (a shell's background job starts with SIGINT ignored).
  before = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    with pytest.raises(Interrupted, match='SIGINT: stopped at step 8') as info:
      train.train_and_evaluate(config, wd, eval_callback=interrupt)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Restored.
  finally:
    signal.signal(signal.SIGINT, before)
  assert info.value.signum == signal.SIGINT
  assert checkpoint.Checkpointer(wd).latest_step() == 8
  results = train.train_and_evaluate(config, wd)
  assert results['final_step'] == 12 and results['stopped'] == 'num_steps'
  straight = str(tmp_path / 'straight')
  train.train_and_evaluate(config, straight)
  for x, y in zip(jax.tree.leaves(_read_params(straight)), jax.tree.leaves(_read_params(wd))):
    np.testing.assert_array_equal(x, y)  # Resumed bit for bit.


def _drifting_corpus(tmp_path):
  """Train text of a and b, validation text of c and d: the better the model
  learns the train split, the worse its validation loss."""
  path = tmp_path / 'drift.txt'
  path.write_text('abba baab\n' * 1800 + 'cdcd dcdc\n' * 100 + 'abcd dcba\n' * 100)
  return str(path)


def test_early_stopping_stops_and_resumes_where_an_unbroken_run_stops(tmp_path):
  config = tiny_config(**{'data.name': '', 'data.path': _drifting_corpus(tmp_path),
                          'train.num_steps': 200, 'eval.eval_every': 3,
                          'train.early_stopping_patience': 2, 'train.learning_rate': 1e-2})
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  records = [json.loads(l) for l in open(tmp_path / 'straight' / 'metrics.jsonl')]
  losses = [r['val_loss'] for r in records]
  # It stops at the second evaluation in a row without a new best, and no later.
  best = [i for i, l in enumerate(losses) if l == min(losses[:i + 1])]
  assert len(losses) == best[-1] + 3 and losses[-2] >= min(losses) and losses[-1] >= min(losses)
  assert straight['stopped'] == 'early_stopping' and straight['final_step'] == 3 * len(losses)
  assert straight['best_step'] == 3 * (best[-1] + 1) and straight['early_stopping_patience'] == 2
  # Preempted one step before it would stop, then resumed: the same stop, the same result.
  wd = str(tmp_path / 'resumed')
  train.train_and_evaluate(config, wd, stop_after_step=straight['final_step'] - 1)
  resumed = train.train_and_evaluate(config, wd)
  for key in ('final_step', 'best_step', 'best_val_loss', 'test_loss', 'stopped'):
    assert resumed[key] == straight[key], key
  # Running a finished run again trains no further.
  again = train.train_and_evaluate(config, wd)
  assert again['final_step'] == straight['final_step']
  # With early stopping held back until past that stop, a run goes on; the stopped run,
  # run again with that config, resumes and ends where the new config's run ends.
  per_epoch = records[0]['step'] / records[0]['epoch']
  later = config.copy_and_resolve_references()
  later.train.early_stopping_start_epoch = (straight['final_step'] + 6) / per_epoch
  held = train.train_and_evaluate(later, str(tmp_path / 'held'))
  assert held['final_step'] >= straight['final_step'] + 6
  carried_on = train.train_and_evaluate(later, wd)
  for key in ('final_step', 'best_step', 'best_val_loss', 'test_loss', 'stopped'):
    assert carried_on[key] == held[key], key
  steps = [json.loads(l)['step'] for l in open(os.path.join(wd, 'metrics.jsonl'))]
  assert steps == sorted(set(steps))  # Each step once.


@pytest.fixture
def step_clock(monkeypatch):
  """Training time that advances 10 ms at each reading, whatever the machine's speed:
  the loop reads it a fixed number of times per step, so what a time budget does
  depends on step counts only."""
  readings = itertools.count()
  monkeypatch.setattr(periodic, 'now', lambda: next(readings) * 0.01)


def test_time_budget_stops_the_run_and_is_recorded(tmp_path, step_clock):
  wd = str(tmp_path / 'run')
  # 15 ms of training: the clock reads 10 ms before the first step and 20 ms after it.
  budget = 0.015 / 60
  results = train.train_and_evaluate(
      tiny_config(**{'train.time_budget_minutes': budget, 'train.num_steps': 100}), wd)
  assert results['stopped'] == 'time_budget' and results['final_step'] == 1
  assert results['best_step'] == 1 and results['time_budget_minutes'] == budget
  assert results['train_time_s'] <= results['elapsed_s']
  records = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  assert [r['step'] for r in records] == [1]  # Evaluated where it stopped.
  # A larger budget on resume lets the run go on.
  more = train.train_and_evaluate(
      tiny_config(**{'train.time_budget_minutes': 0.0, 'train.num_steps': 10}), wd)
  assert more['final_step'] == 10 and more['stopped'] == 'num_steps'


def test_divergence_stops_with_the_last_good_checkpoint(tmp_path):
  wd = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(**{'train.num_steps': 10, 'eval.eval_every': 5}), wd)
  good = _read_params(wd, 10)
  # Resumed with an infinite learning rate: step 11 writes NaN parameters, so
  # step 12's loss is NaN; it is found at the next log step (15).
  diverging = tiny_config(**{'train.num_steps': 30, 'eval.eval_every': 100,
                             'train.learning_rate': float('inf')})
  with pytest.raises(Diverged, match='not finite at step 12; the last good checkpoint is'
                                     ' step 10'):
    train.train_and_evaluate(diverging, wd)
  ckpt = checkpoint.Checkpointer(wd)
  assert ckpt.all_steps() == [5, 10] and ckpt.best_step() in (5, 10)
  for a, b in zip(jax.tree.leaves(good), jax.tree.leaves(_read_params(wd, 10))):
    np.testing.assert_array_equal(a, b)
  # With stop_on_divergence the same run ends instead, its best checkpoint evaluated.
  best = ckpt.best_step()
  ckpt.close()
  diverging.train.stop_on_divergence = True
  r = train.train_and_evaluate(diverging, wd)
  assert r['stopped'] == 'diverged' and r['best_step'] == best
  assert math.isfinite(r['best_val_loss']) and math.isfinite(r['test_loss'])
  assert checkpoint.Checkpointer(wd).all_steps() == [5, 10]  # Nothing after it saved.
  assert run_files.finished(wd, diverging)  # A sweep counts it as a finished trial.


@pytest.mark.parametrize('fast,kernel,want', [(False, True, 'reference'), (True, False, 'scan'),
                                              (True, True, 'auto'), (None, None, 'auto')])
def test_legacy_recurrence_booleans_still_load(tmp_path, fast, kernel, want):
  config = tiny_config(**{'train.num_steps': 2, 'eval.eval_every': 2})
  with config.unlocked():
    del config.model['recurrence']  # A config written before the field existed.
    if fast is not None:
      config.model.fast_recurrence, config.model.cpu_kernel = fast, kernel
  assert config_lib.validate(config).model.recurrence == want
  wd = tmp_path / 'old'
  train.train_and_evaluate(config, str(wd))
  saved = json.loads((wd / 'config.json').read_text())
  assert saved['model']['recurrence'] == want and 'fast_recurrence' not in saved['model']
  # A workdir whose config.json still has the booleans loads for inference.
  saved['model'].pop('recurrence')
  saved['model'].update(fast_recurrence=False, cpu_kernel=True)
  (wd / 'config.json').write_text(json.dumps(saved))
  model, _, _ = checkpoint.load_model(str(wd))
  assert model.recurrence == 'reference'


def test_a_config_saved_before_the_adam_fields_loads_with_adams_defaults(tmp_path):
  saved = tiny_config().to_dict()
  for field in ('adam_b1', 'adam_b2'):
    del saved['train'][field]
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  t = config_lib.load(str(tmp_path)).train
  assert (t.adam_b1, t.adam_b2) == (0.9, 0.999)  # optax.adam's, which such a run used.

def test_bad_config_fields_are_one_line_errors(tmp_path):
  for field, value, needle in (('model.recurrence', 'fast', 'model.recurrence'),
                               ('train.optimizer', 'sgd', 'train.optimizer'),
                               ('train.lr_schedule', 'step', 'train.lr_schedule'),
                               ('model.embed_dim', -1, 'model.embed_dim'),
                               ('train.adam_b2', 1.0, 'train.adam_b2'),
                               ('train.early_stopping_min_delta', -0.1,
                                'train.early_stopping_min_delta'),
                               ('train.early_stopping_start_epoch', -1.0,
                                'train.early_stopping_start_epoch'),
                               ('log_every', 0, 'log_every')):
    with pytest.raises(UserError, match=needle):
      train.train_and_evaluate(tiny_config(**{field: value}), str(tmp_path / 'x'))
    assert not (tmp_path / 'x').exists()  # Checked before anything is written.


def test_inference_restore_reads_no_optimizer_state(tmp_path, monkeypatch):
  wd = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(**{'train.num_steps': 4, 'eval.eval_every': 2}), wd)
  # Any attempt to restore the full train state (with Adam's moments) fails here.
  monkeypatch.setattr(checkpoint.Checkpointer, 'restore',
                      lambda *a, **k: pytest.fail('restored the optimizer state'))
  model, vocab, step = checkpoint.load_model(wd, 'latest')
  assert step == 4 and len(vocab) > 10
  logits, _ = model(jnp.zeros((1, 3), jnp.int32), model.initial_carry(1))
  assert logits.shape == (1, 3, len(vocab))


def test_init_from_maps_parameters_by_character(tmp_path):
  from rnnlm.training import finetune
  from rnnlm.model import charlm as model_lib
  source = str(tmp_path / 'source')
  train.train_and_evaluate(tiny_config(**{'train.num_steps': 4, 'eval.eval_every': 2}), source)
  trained, old_vocab, _ = checkpoint.load_model(source, 'best')
  old = nnx.to_pure_dict(nnx.state(trained, nnx.Param))
  # A new corpus: some of the old characters, and two it never saw.
  text = ''.join(old_vocab.chars[5:40]).replace('\n', '') + '\u20ac~'
  path = tmp_path / 'new.txt'
  path.write_text((text + '\n') * 400)
  vocab = data.Vocab.from_text(path.read_text())
  config = tiny_config(**{'data.name': '', 'data.path': str(path), 'init_from': source,
                          'seed': 7})
  fresh = nnx.state(model_lib.from_config(config, len(vocab)), nnx.Param)
  fresh_dict = jax.tree.map(np.asarray, nnx.to_pure_dict(fresh))
  params, record = finetune.transplant(fresh, vocab, source)
  new = nnx.to_pure_dict(params)
  assert record['new_chars'] == sorted({'\u20ac', '~'} - set(old_vocab.chars))
  for i, c in enumerate(vocab.chars):
    if c in old_vocab.chars:
      j = old_vocab.chars.index(c)
      np.testing.assert_array_equal(new['layers'][0]['W_x'][i], old['layers'][0]['W_x'][j])
      np.testing.assert_array_equal(new['head']['kernel'][:, i], old['head']['kernel'][:, j])
      assert new['head']['bias'][i] == old['head']['bias'][j]
    else:  # A fresh row, as a new run would have it.
      np.testing.assert_array_equal(new['layers'][0]['W_x'][i], fresh_dict['layers'][0]['W_x'][i])
      np.testing.assert_array_equal(new['head']['kernel'][:, i], fresh_dict['head']['kernel'][:, i])
  for name in ('W_h', 'b'):
    np.testing.assert_array_equal(new['layers'][1][name], old['layers'][1][name])
  # Through the train loop: it runs and records the mapping.
  wd = tmp_path / 'tuned'
  train.train_and_evaluate(tiny_config(**{'data.name': '', 'data.path': str(path),
                                          'init_from': source, 'train.num_steps': 2,
                                          'eval.eval_every': 2}), str(wd))
  saved = json.loads((wd / 'init_from.json').read_text())
  assert saved['source'] == source and saved['new_chars'] == record['new_chars']
  # A model of another shape is refused before anything is written.
  with pytest.raises(UserError, match='model.hidden_size=32'):
    train.train_and_evaluate(tiny_config(**{'init_from': source, 'model.hidden_size': 48}),
                             str(tmp_path / 'bad'))
  assert not (tmp_path / 'bad').exists()


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_bfloat16_compute_tracks_float32(tmp_path, cell):
  """bf16 matmuls and activations, float32 parameters, optimizer state and loss:
  after 60 steps the losses agree to 0.03 nats, while training moved them by far more."""
  curves = {}
  for dtype in ('float32', 'bfloat16'):
    wd = str(tmp_path / dtype)
    config = tiny_config(**{'model.compute_dtype': dtype, 'model.cell': cell,
                            'train.num_steps': 60, 'eval.eval_every': 20,
                            'train.learning_rate': 1e-2})
    train.train_and_evaluate(config, wd)
    curves[dtype] = [json.loads(l)['val_loss'] for l in open(os.path.join(wd, 'metrics.jsonl'))]
    state = nnx.state(checkpoint.load_model(wd, 'latest')[0], nnx.Param)
    assert {x.dtype for x in jax.tree.leaves(state)} == {np.dtype('float32')}
  f32, bf16 = np.array(curves['float32']), np.array(curves['bfloat16'])
  assert f32[0] - f32[-1] > 0.3  # It learned something...
  np.testing.assert_allclose(bf16, f32, atol=0.03)  # ...and bf16 learned the same.
  assert not np.array_equal(bf16, f32)  # The bf16 path really ran in bf16.


@pytest.mark.parametrize('cell', ['mingru', 'minlstm', 'lru'])
def test_parallel_cells_train_and_sample(tmp_path, cell):
  wd = str(tmp_path / cell)
  results = train.train_and_evaluate(tiny_config(**{'model.cell': cell, 'train.num_steps': 40,
                                                    'eval.eval_every': 20,
                                                    'train.learning_rate': 1e-2}), wd)
  records = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  vocab = data.Vocab.load(os.path.join(wd, 'vocab.json'))
  assert records[-1]['val_loss'] < np.log(len(vocab)) - 0.5  # Well below uniform.
  assert results['test_loss'] > 0
  assert os.path.getsize(os.path.join(wd, 'samples', 'step_000040.txt')) > 0


def test_schedule_laid_over_the_time_budget(tmp_path, monkeypatch, step_clock):
  wd = tmp_path / 'run'
  config = tiny_config(**{'train.time_budget_minutes': 0.1, 'train.schedule_from_budget': True,
                          'train.num_steps': 1_000_000, 'train.lr_schedule': 'cosine',
                          'eval.eval_every': 50})
  monkeypatch.setattr(budget, '_RETIME_FRACTIONS', (0.2,))  # Re-timed well after step 60.
  train.train_and_evaluate(config, str(wd), stop_after_step=60)
  recorded = json.loads((wd / 'schedule.json').read_text())
  assert 'retimes' not in recorded  # Not before 20% of the schedule.
  steps = recorded['schedule_steps']
  # The budget divided by the timed step: 6 s over 20 steps timed as 10 ms.
  assert recorded['seconds_per_step'] == pytest.approx(0.01 / 20)
  assert steps == int(0.1 * 60 / recorded['seconds_per_step']) and 1 < steps < 1_000_000
  # The cosine spans the estimated steps, not the cap: its value at step 50 says so.
  lr = json.loads((wd / 'metrics.jsonl').read_text().splitlines()[0])['learning_rate']
  t = config.train
  assert lr == pytest.approx(float(optim.make_schedule(t, 1, steps)(49)), rel=1e-6)
  assert lr != pytest.approx(float(optim.make_schedule(t, 1, 1_000_000)(49)), rel=1e-6)
  # Resumed, it reads the recorded count rather than timing again.
  train.train_and_evaluate(config, str(wd))
  resumed = json.loads((wd / 'schedule.json').read_text())
  assert {k: resumed[k] for k in recorded} == recorded
  assert json.loads((wd / 'results.json').read_text())['stopped'] == 'time_budget'


def _cosine_lr(t, steps: int, s: int) -> float:
  """The warmup-cosine rate of update s (1-based) over `steps`, worked by hand."""
  if s - 1 < t.warmup_steps:
    return t.learning_rate * (s - 1) / t.warmup_steps
  frac = (s - 1 - t.warmup_steps) / (steps - t.warmup_steps)
  end = t.learning_rate * t.end_lr_fraction
  return end + (t.learning_rate - end) * 0.5 * (1 + np.cos(np.pi * frac))


def test_budget_schedule_is_retimed_in_the_loop_and_resumes_exactly(tmp_path, monkeypatch,
                                                                      step_clock):
  monkeypatch.setattr(budget, '_RETIME_FRACTIONS', (0.0, 0.0))  # Re-time at steps 21 and 42.
  config = tiny_config(**{'train.time_budget_minutes': 0.5, 'train.schedule_from_budget': True,
                          'train.num_steps': 1_000_000, 'train.lr_schedule': 'cosine',
                          'train.warmup_steps': 5, 'train.end_lr_fraction': 0.0,
                          'eval.eval_every': 10})
  a = tmp_path / 'a'
  train.train_and_evaluate(config, str(a), stop_after_step=50)
  plan = json.loads((a / 'schedule.json').read_text())
  retimes = plan['retimes']
  # Each re-timing times the steps since the one before: 2-21, then 22-42.
  assert [(r['at_step'], r['timed_steps']) for r in retimes] == [(21, 20), (42, 21)]
  assert all(21 < r['schedule_steps'] <= 1_000_000 for r in retimes)
  # The recorded rates follow the first count up to step 21, the second to 42, then the third.
  t = config.train
  lrs = {r['step']: r['learning_rate'] for r in map(json.loads, open(a / 'metrics.jsonl'))}
  assert sorted(lrs) == [10, 20, 30, 40, 50]
  for s, lr in lrs.items():
    steps = (plan['schedule_steps'] if s <= 21 else retimes[0]['schedule_steps'] if s <= 42
             else retimes[1]['schedule_steps'])
    assert lr == pytest.approx(_cosine_lr(t, steps, s), rel=1e-5), s
  # A run given that plan from the start, preempted at step 30 and resumed, makes no
  # re-timing of its own and ends where the run that re-timed itself did.
  b = tmp_path / 'b'
  b.mkdir()
  (b / 'schedule.json').write_text(json.dumps(plan))
  train.train_and_evaluate(config, str(b), stop_after_step=30)
  train.train_and_evaluate(config, str(b), stop_after_step=50)
  assert json.loads((b / 'schedule.json').read_text()) == plan
  pa, pb = _read_params(str(a), 50), _read_params(str(b), 50)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), pa, pb)
  # The comparison is sharp: a plan whose last rate reaches zero at step 44 ends elsewhere.
  c = tmp_path / 'c'
  c.mkdir()
  (c / 'schedule.json').write_text(json.dumps(
      dict(plan, retimes=[retimes[0], dict(retimes[1], schedule_steps=44)])))
  train.train_and_evaluate(config, str(c), stop_after_step=50)
  pc = _read_params(str(c), 50)
  assert max(float(np.max(np.abs(x - y)))
             for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pc))) > 1e-4


def test_a_plan_recorded_with_one_retiming_reads_as_before():
  """schedule.json of earlier versions held at most one re-timing, as 'retimed': its
  schedule is unchanged, and the run goes on to the next re-timing from there."""
  t = tiny_config(**{'train.lr_schedule': 'cosine', 'train.warmup_steps': 5,
                     'train.end_lr_fraction': 0.0}).train
  plan = {'schedule_steps': 400, 'retimed': {'at_step': 21, 'schedule_steps': 300}}
  s = budget.budget_schedule(t, 1, plan)
  # optax counts updates already made: step s reads count s - 1.
  for step in (10, 21, 22, 200, 300):
    assert float(s(step - 1)) == pytest.approx(_cosine_lr(t, 400 if step <= 21 else 300, step),
                                               rel=1e-5, abs=1e-9), step
  assert budget._next_retime(plan, 21, 1_000_000) == math.ceil(budget._RETIME_FRACTIONS[1] * 300)
