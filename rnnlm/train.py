"""Training and evaluation: `train_step`, `eval_step`, `train_and_evaluate`.

One jitted train step does the whole update (forward over a window, cross-entropy,
gradients, clipping, optimizer), and hands back the final carry, which the next
window starts from. Everything a step needs comes in as arguments.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import nnx
from tqdm import tqdm

from rnnlm import checkpoint as checkpoint_lib
from rnnlm import cells
from rnnlm import corpora
from rnnlm import data
from rnnlm import parallel
from rnnlm import sample as sample_lib
from rnnlm.errors import UserError
from rnnlm.model import CharLM, count_params

LN2 = math.log(2.0)

# Fields that fix the shape of the saved state or the meaning of the data position:
# resuming a workdir with any of them changed is refused.
RESUME_FIELDS = ('model.cell', 'model.hidden_size', 'model.num_layers', 'model.embed_dim',
                 'data.name', 'data.path', 'data.glob', 'data.split', 'data.train_fraction',
                 'data.max_bytes',
                 'train.batch_size', 'train.seq_length')


# ----------------------------------------------------------------------------
# Pieces


def make_model(config: ml_collections.ConfigDict, vocab_size: int) -> CharLM:
  m = config.model
  return CharLM(vocab_size, cell=m.cell, hidden_size=m.hidden_size, num_layers=m.num_layers,
                embed_dim=m.embed_dim, dropout=m.dropout, unroll=m.unroll,
                fast_recurrence=m.fast_recurrence, cpu_kernel=m.get('cpu_kernel', True),
                rngs=nnx.Rngs(config.seed))


def make_schedule(train_config, steps_per_epoch: int, num_steps: int) -> optax.Schedule:
  t = train_config
  if t.lr_schedule == 'constant':
    return optax.constant_schedule(t.learning_rate)
  if t.lr_schedule == 'exponential':
    return optax.exponential_decay(
        init_value=t.learning_rate, transition_steps=steps_per_epoch,
        decay_rate=t.decay_rate,
        # char-rnn multiplies by decay_rate at the end of every epoch e >= decay_after.
        transition_begin=int(max(t.decay_after_epochs - 1, 0) * steps_per_epoch),
        staircase=True)
  if t.lr_schedule == 'cosine':
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=t.learning_rate, warmup_steps=t.warmup_steps,
        decay_steps=max(num_steps, t.warmup_steps + 1),
        end_value=t.learning_rate * t.end_lr_fraction)
  raise UserError(f'unknown train.lr_schedule {t.lr_schedule!r};'
                  ' use constant, exponential or cosine')


def make_optimizer(train_config, schedule: optax.Schedule) -> optax.GradientTransformation:
  t = train_config
  if t.optimizer == 'adam':
    opt = optax.adam(schedule)
  elif t.optimizer == 'adamw':
    opt = optax.adamw(schedule, weight_decay=t.weight_decay)
  elif t.optimizer == 'rmsprop':
    opt = optax.rmsprop(schedule, decay=t.rmsprop_decay)
  else:
    raise UserError(f'unknown train.optimizer {t.optimizer!r}; use adam, adamw or rmsprop')
  if t.grad_clip_norm > 0:
    opt = optax.chain(optax.clip_by_global_norm(t.grad_clip_norm), opt)
  return opt


def masked_loss(logits: jax.Array, targets: jax.Array, mask: jax.Array
                ) -> tuple[jax.Array, jax.Array]:
  """(sum of cross-entropy nats over real targets, number of real targets)."""
  ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
  return jnp.sum(ce * mask), jnp.sum(mask)


def create_train_state(config: ml_collections.ConfigDict, vocab_size: int,
                       steps_per_epoch: int, num_steps: int, mesh):
  """A fresh model and its train state, placed on the mesh.

  Returns:
    (model, graphdef, optimizer, state) where state is
    {'params', 'opt_state', 'step', 'rng' (raw key data), 'carry'}.
  """
  t = config.train
  model = make_model(config, vocab_size)
  graphdef, params = nnx.split(model)
  optimizer = make_optimizer(t, make_schedule(t, steps_per_epoch, num_steps))
  state = {
      'params': params,
      'opt_state': optimizer.init(params),
      'step': jnp.int32(0),
      'rng': jax.random.key_data(jax.random.key(config.seed + 1)),
  }
  state = parallel.replicate(state, mesh)
  state['carry'] = parallel.shard_carry(model.initial_carry(t.batch_size), mesh)
  return model, graphdef, optimizer, state


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise UserError(f'{workdir} holds no run (no config.json); give the --workdir of a'
                    ' training run')
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def restore_model(workdir: str, which: str = 'best', step: int | None = None
                  ) -> tuple[CharLM, data.Vocab, int]:
  """Loads a trained model from a workdir's checkpoint.

  Args:
    workdir: a training run's directory.
    which: 'best' (lowest val loss) or 'latest'; ignored when `step` is given.
    step: a specific checkpointed step.

  Returns:
    (model, vocab, step).

  Raises:
    UserError: no run, no checkpoint, or no such step in the workdir.
  """
  config = load_config(workdir)
  ckpt = checkpoint_lib.Checkpointer(workdir, read_only=True)
  steps = ckpt.all_steps()
  vocab_path = os.path.join(workdir, 'vocab.json')
  if not steps or not os.path.exists(vocab_path):
    raise UserError(f'no checkpoint in {workdir}; train first (experiments/train.py'
                    f' --workdir={workdir})')
  vocab = data.Vocab.load(vocab_path)
  if step is not None:
    if step not in steps:
      raise UserError(f'no checkpoint for step {step} in {workdir}; have {sorted(steps)}')
  elif which == 'best':
    step = ckpt.best_step() or ckpt.latest_step()
  elif which == 'latest':
    step = ckpt.latest_step()
  else:
    raise UserError(f'unknown checkpoint choice {which!r}; use best or latest')
  mesh = parallel.make_mesh(jax.devices()[:1])
  model, graphdef, _, state = create_train_state(config, len(vocab), 1, 1, mesh)
  state, _ = ckpt.restore(step, state)
  ckpt.close()
  return nnx.merge(graphdef, state['params']), vocab, step


def _reset_carry(carry, reset: jax.Array):
  keep = 1.0 - reset.astype(jnp.float32)
  return jax.tree.map(lambda c: c * keep, carry)


def train_step(state: dict, batch: dict, *, graphdef, optimizer
               ) -> tuple[dict, dict]:
  """One update on one window.

  Args:
    state: {'params', 'opt_state', 'step', 'rng', 'carry'}.
    batch: {'inputs', 'targets', 'mask'} [batch, time] and 'reset' (scalar; 1
      zeroes the carry first, at the start of an epoch).

  Returns:
    (new state, {'loss': mean nats per real target, 'grad_norm'}).
  """
  carry = _reset_carry(state['carry'], batch['reset'])
  dropout_key = jax.random.fold_in(state['rng'], state['step'])

  def loss_fn(params):
    model = nnx.merge(graphdef, params)
    logits, new_carry = model(batch['inputs'], carry, dropout_key)
    total, count = masked_loss(logits, batch['targets'], batch['mask'])
    return total / jnp.maximum(count, 1.0), new_carry

  (loss, new_carry), grads = jax.value_and_grad(loss_fn, has_aux=True)(state['params'])
  updates, opt_state = optimizer.update(grads, state['opt_state'], state['params'])
  params = optax.apply_updates(state['params'], updates)
  new_state = dict(state, params=params, opt_state=opt_state, step=state['step'] + 1,
                   carry=jax.lax.stop_gradient(new_carry))
  return new_state, {'loss': loss, 'grad_norm': optax.tree.norm(grads)}


def eval_step(params, batch: dict, carry, *, graphdef) -> tuple[jax.Array, jax.Array, Any]:
  """Forward only: (sum of nats, count, carry after the window)."""
  carry = _reset_carry(carry, batch['reset'])
  model = nnx.merge(graphdef, params)
  logits, carry = model(batch['inputs'], carry)
  total, count = masked_loss(logits, batch['targets'], batch['mask'])
  return total, count, carry


def _device_batch(b: data.Batch, mesh) -> dict:
  return {'inputs': parallel.shard_batch(b.inputs, mesh),
          'targets': parallel.shard_batch(b.targets, mesh),
          'mask': parallel.shard_batch(b.mask, mesh),
          'reset': jnp.float32(b.reset)}


def evaluate(eval_fn, params, stream: data.BatchStream, zero_carry, mesh) -> dict:
  """Loss over every character of a split, state carried through each stream."""
  total, count = 0.0, 0.0
  carry = zero_carry
  for b in stream.epoch_batches():
    t, c, carry = eval_fn(params, _device_batch(b, mesh), carry)
    total += float(t)
    count += float(c)
  loss = total / count
  return {'loss': loss, 'bpc': loss / LN2}


# ----------------------------------------------------------------------------
# Workdir bookkeeping


def _get(config, dotted: str):
  node = config
  for part in dotted.split('.'):
    node = node[part]
  return list(node) if isinstance(node, (tuple, list)) else node


def check_resume_compatible(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Refuses to resume a workdir whose saved config differs in a shape field."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return
  with open(path) as f:
    old = json.load(f)
  for field in RESUME_FIELDS:
    try:
      before = _get(old, field)
    except KeyError:
      continue
    now = _get(config, field)
    if before != now:
      raise UserError(
          f'config field {field} is {now!r} but the run in {workdir} used {before!r};'
          f' use a new --workdir, or --config.{field}={before!r} to resume it')


def check_vocab_compatible(workdir: str, vocab: data.Vocab) -> None:
  path = os.path.join(workdir, 'vocab.json')
  if os.path.exists(path) and data.Vocab.load(path) != vocab:
    raise UserError(f'the corpus vocabulary differs from {path} (the run in that workdir'
                    ' used other data); use a new --workdir or the original data')


def validate_config(config: ml_collections.ConfigDict) -> None:
  m, t, e = config.model, config.train, config.eval
  if m.cell not in cells.CELLS:
    raise UserError(f'unknown model.cell {m.cell!r}; use one of {", ".join(sorted(cells.CELLS))}')
  for name, value in (('model.hidden_size', m.hidden_size), ('model.num_layers', m.num_layers),
                      ('train.batch_size', t.batch_size), ('train.seq_length', t.seq_length),
                      ('eval.eval_every', e.eval_every), ('eval.batch_size', e.batch_size),
                      ('model.unroll', m.unroll)):
    if not isinstance(value, int) or value < 1:
      raise UserError(f'{name} must be a positive integer (got {value!r})')
  if not 0.0 <= m.dropout < 1.0:
    raise UserError(f'model.dropout must be in [0, 1) (got {m.dropout})')
  if t.learning_rate <= 0:
    raise UserError(f'train.learning_rate must be > 0 (got {t.learning_rate})')
  if t.num_steps < 0 or (t.num_steps == 0 and t.num_epochs <= 0):
    raise UserError('set train.num_steps > 0 or train.num_epochs > 0')


def _truncate_metrics(path: str, last_step: int) -> None:
  """Drops metric lines written after the checkpoint a run resumes from."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = [l for l in f if l.strip() and json.loads(l)['step'] <= last_step]
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    f.writelines(lines)
  os.replace(tmp, path)


def _append_jsonl(path: str, record: dict) -> None:
  with open(path, 'a') as f:
    f.write(json.dumps(record) + '\n')


class _TensorBoard:
  """Scalars to TensorBoard event files if tensorboardX is installed."""

  def __init__(self, workdir: str, enabled: bool):
    self.writer = None
    if enabled:
      try:
        from tensorboardX import SummaryWriter
        self.writer = SummaryWriter(logdir=workdir)
      except ImportError:
        logging.warning('tensorboardX not installed; no TensorBoard events written')

  def scalars(self, step: int, values: dict) -> None:
    if self.writer is not None:
      for k, v in values.items():
        self.writer.add_scalar(k, v, step)
      self.writer.flush()

  def close(self) -> None:
    if self.writer is not None:
      self.writer.close()


# ----------------------------------------------------------------------------
# The run


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after_step: int | None = None, devices=None,
                       eval_callback=None) -> dict:
  """Trains a CharLM as `config` says, in `workdir`, resuming if it holds a run.

  Args:
    config: see configs/default.py.
    workdir: output directory (config.json, vocab.json, metrics.jsonl, samples/,
      checkpoints/, TensorBoard events, results.json).
    stop_after_step: stop (without a final checkpoint) once this step is done, as
      a preemption would; used to test exact resume.
    devices: the devices to use (default: all).
    eval_callback: called on the chief after each evaluation as
      `eval_callback(step, model, vocab, record)` (e.g. to measure samples).

  Returns:
    The final results dict (also written to results.json), or the last metrics
    if the run was stopped early.

  Raises:
    UserError: a bad config, bad data, or a workdir that holds another run.
  """
  validate_config(config)
  workdir = os.path.abspath(workdir)
  check_resume_compatible(workdir, config)
  corpus = corpora.get_corpus(config.data)
  vocab = corpus.vocab
  check_vocab_compatible(workdir, vocab)
  train_tokens, val_tokens, test_tokens = data.split(corpus.tokens, tuple(config.data.split))
  fraction = config.data.get('train_fraction', 1.0)
  if not 0 < fraction <= 1:
    raise UserError(f'data.train_fraction must be in (0, 1] (got {fraction})')
  # A data-scale study trains on a prefix of the train split; val/test stay the same.
  train_tokens = train_tokens[:max(2, int(round(len(train_tokens) * fraction)))]
  t = config.train
  try:
    train_stream = data.BatchStream(train_tokens, t.batch_size, t.seq_length)
  except UserError as e:
    raise UserError(f'train split: {e}') from None
  try:
    val_stream = data.BatchStream(val_tokens, config.eval.batch_size, t.seq_length)
  except UserError as e:
    raise UserError(f'validation split: {e}') from None
  test_stream = None
  if len(test_tokens) > config.eval.batch_size * t.seq_length:
    test_stream = data.BatchStream(test_tokens, config.eval.batch_size, t.seq_length)
  if config.eval.sample_prime and vocab.unknown_chars(config.eval.sample_prime):
    raise UserError('eval.sample_prime has characters not in the corpus:'
                    f' {vocab.unknown_chars(config.eval.sample_prime)}; change it')

  mesh = parallel.make_mesh(devices)
  parallel.check_batch_size(t.batch_size, mesh)
  parallel.check_batch_size(config.eval.batch_size, mesh, 'eval.batch_size')
  is_chief = jax.process_index() == 0

  steps_per_epoch = len(train_stream)
  num_steps = t.num_steps or int(t.num_epochs * steps_per_epoch)
  model, graphdef, optimizer, state = create_train_state(config, len(vocab), steps_per_epoch,
                                                         num_steps, mesh)
  num_params = count_params(model)
  eval_zero_carry = parallel.shard_carry(model.initial_carry(config.eval.batch_size), mesh)

  def step_fn(state, batch):
    # The key is stored as raw uint32 data so that checkpoints hold a plain array.
    s = dict(state, rng=jax.random.wrap_key_data(state['rng']))
    new, metrics = train_step(s, batch, graphdef=graphdef, optimizer=optimizer)
    return dict(new, rng=state['rng']), metrics

  p_train_step = jax.jit(step_fn, donate_argnums=0)
  p_eval_step = jax.jit(functools.partial(eval_step, graphdef=graphdef))

  ckpt = checkpoint_lib.Checkpointer(workdir, keep_latest=config.checkpoint.keep_latest)
  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  start_step, elapsed_before = 0, 0.0
  latest = ckpt.latest_step()
  if latest is not None:
    state, meta = ckpt.restore(latest, state)
    train_stream.load_state_dict(meta['data'])
    start_step, elapsed_before = int(meta['step']), float(meta['elapsed_s'])
    logging.info('Resumed %s from step %d (epoch %d, window %d)', workdir, start_step,
                 train_stream.epoch, train_stream.window)
    if is_chief:
      _truncate_metrics(metrics_path, start_step)
  if is_chief:
    os.makedirs(os.path.join(workdir, 'samples'), exist_ok=True)
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json(indent=2))
    vocab.save(os.path.join(workdir, 'vocab.json'))

  logging.info('Model %s: %d parameters; %d steps (%.2f epochs of %d windows), %d devices',
               config.model.cell, num_params, num_steps, num_steps / steps_per_epoch,
               steps_per_epoch, mesh.devices.size)
  tb = _TensorBoard(workdir, enabled=is_chief)
  chars_per_step = t.batch_size * t.seq_length
  run_start = time.time()
  last_record: dict = {}

  def do_eval(step: int, train_loss: float, chars_per_sec: float) -> dict:
    val = evaluate(p_eval_step, state['params'], val_stream, eval_zero_carry, mesh)
    record = {'step': step, 'epoch': round(step / steps_per_epoch, 4),
              'train_loss': train_loss, 'val_loss': val['loss'], 'val_bpc': val['bpc'],
              'chars_per_sec': chars_per_sec,
              'elapsed_s': round(elapsed_before + time.time() - run_start, 2)}
    if is_chief:
      _append_jsonl(metrics_path, record)
      tb.scalars(step, {k: v for k, v in record.items() if k not in ('step',)})
      if config.eval.sample_length > 0 and config.eval.sample_prime:
        text = sample_lib.generate_text(
            nnx.merge(graphdef, state['params']), vocab, config.eval.sample_prime,
            length=config.eval.sample_length, seed=config.seed,
            temperature=config.eval.sample_temperature)[0]
        with open(os.path.join(workdir, 'samples', f'step_{step:06d}.txt'), 'w') as f:
          f.write(text)
    logging.info('step %d: train %.4f val %.4f nats (%.4f bpc), %.0f chars/s', step,
                 train_loss, val['loss'], val['bpc'], chars_per_sec)
    if eval_callback is not None and is_chief:
      eval_callback(step, nnx.merge(graphdef, state['params']), vocab, record)
    return record

  def save(step: int, val_loss: float | None) -> None:
    meta = {'step': step, 'data': train_stream.state_dict(),
            'elapsed_s': elapsed_before + time.time() - run_start,
            'val_loss': val_loss}
    ckpt.save(step, state, meta, val_loss)

  eval_steps = set(config.eval.get('eval_steps', ()) or ())
  pbar = tqdm(total=num_steps, initial=start_step, disable=None if is_chief else True,
              unit='step', dynamic_ncols=True)
  loss_sum, loss_count = jnp.float32(0.0), 0
  interval_start, interval_chars = time.time(), 0
  step = start_step
  try:
    while step < num_steps:
      batch = _device_batch(train_stream.next(), mesh)
      state, m = p_train_step(state, batch)
      step += 1
      if step == start_step + 1:  # Keep compilation out of the throughput figure.
        jax.block_until_ready(m['loss'])
        interval_start = time.time()
        interval_chars = -chars_per_step
      loss_sum, loss_count = loss_sum + m['loss'], loss_count + 1
      interval_chars += chars_per_step
      pbar.update(1)
      if step % config.log_every == 0 and not pbar.disable:
        elapsed = time.time() - interval_start
        pbar.set_postfix(loss=f'{float(m["loss"]):.4f}',
                         chars_s=f'{interval_chars / max(elapsed, 1e-9):.0f}', refresh=False)
      if step % config.eval.eval_every == 0 or step == num_steps or step in eval_steps:
        train_loss = float(loss_sum) / loss_count
        chars_per_sec = interval_chars / (time.time() - interval_start)
        last_record = do_eval(step, train_loss, round(chars_per_sec, 1))
        save(step, last_record['val_loss'])
        loss_sum, loss_count = jnp.float32(0.0), 0
        interval_start, interval_chars = time.time(), 0
      if stop_after_step is not None and step >= stop_after_step:
        ckpt.wait()
        return last_record
  except KeyboardInterrupt:
    if step > (ckpt.latest_step() or 0):
      save(step, None)
    ckpt.wait()
    logging.warning('Interrupted at step %d; checkpoint saved. Run the same command to'
                    ' resume.', step)
    raise
  finally:
    pbar.close()
    tb.close()
  ckpt.wait()
  results = finish(config, workdir, ckpt, state, p_eval_step, val_stream, test_stream,
                   eval_zero_carry, mesh, num_params, elapsed_before + time.time() - run_start,
                   train_split_chars=len(train_tokens))
  ckpt.close()
  return results


def finish(config, workdir, ckpt, state, eval_fn, val_stream, test_stream, zero_carry,
           mesh, num_params, elapsed_s, train_split_chars: int) -> dict:
  """Evaluates the best checkpoint on the test split; writes results.json."""
  best = ckpt.best_step()
  best_state, meta = ckpt.restore(best, state)
  results = {'best_step': best, 'best_val_loss': meta['val_loss'],
             'best_val_bpc': meta['val_loss'] / LN2, 'num_params': num_params,
             'final_step': int(state['step']), 'elapsed_s': round(elapsed_s, 2),
             'train_split_chars': train_split_chars}
  if test_stream is not None:
    test = evaluate(eval_fn, best_state['params'], test_stream, zero_carry, mesh)
    results.update(test_loss=test['loss'], test_bpc=test['bpc'])
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'results.json'), 'w') as f:
      json.dump(results, f, indent=2)
  logging.info('Results: %s', results)
  return results
