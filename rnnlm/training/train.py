"""Training and evaluation: `train_step`, `eval_step`, `train_and_evaluate`.

One jitted train step does the whole update (forward over a window, cross-entropy,
gradients, clipping, optimizer), and hands back the final carry, which the next
window starts from. Everything a step needs comes in as arguments.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import math
import os
import signal
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import nnx
from tensorboardX import SummaryWriter
from tqdm import tqdm

from rnnlm.training import checkpoint as checkpoint_lib
from rnnlm import config as config_lib
from rnnlm.data import corpora
from rnnlm import data
from rnnlm.training import finetune
from rnnlm.model import charlm as model_lib
from rnnlm.training import parallel
from rnnlm.training import sample as sample_lib
from rnnlm.errors import Diverged, Interrupted, UserError
from rnnlm.model import count_params

LN2 = math.log(2.0)


# ----------------------------------------------------------------------------
# Pieces


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
  raise ValueError(t.lr_schedule)  # config.validate names the choices.


def budget_schedule(train_config, steps_per_epoch: int, plan: dict) -> optax.Schedule:
  """The schedule a time-budgeted run follows, from its schedule.json `plan`: laid over
  `plan['schedule_steps']`, and from each re-timing's `at_step` on (`plan['retimes']`)
  over that re-timing's `schedule_steps`."""
  schedule = make_schedule(train_config, steps_per_epoch, plan['schedule_steps'])
  for retimed in _retimes(plan):
    later = make_schedule(train_config, steps_per_epoch, retimed['schedule_steps'])
    # optax calls a schedule with the count of updates already made: step s uses s - 1.
    schedule = functools.partial(_switch, schedule, later, retimed['at_step'])
  return schedule


def _switch(first: optax.Schedule, later: optax.Schedule, at: int, count):
  return jnp.where(count < at, first(count), later(count))


def make_optimizer(train_config, schedule: optax.Schedule) -> optax.GradientTransformation:
  t = train_config
  if t.optimizer == 'adam':
    opt = optax.adam(schedule, b1=t.adam_b1, b2=t.adam_b2)
  elif t.optimizer == 'adamw':
    opt = optax.adamw(schedule, b1=t.adam_b1, b2=t.adam_b2, weight_decay=t.weight_decay)
  elif t.optimizer == 'rmsprop':
    opt = optax.rmsprop(schedule, decay=t.rmsprop_decay)
  else:
    raise ValueError(t.optimizer)  # config.validate names the choices.
  if t.grad_clip_norm > 0:
    opt = optax.chain(optax.clip_by_global_norm(t.grad_clip_norm), opt)
  return opt


def masked_loss(logits: jax.Array, targets: jax.Array, mask: jax.Array
                ) -> tuple[jax.Array, jax.Array]:
  """(sum of cross-entropy nats over real targets, number of real targets)."""
  ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
  return jnp.sum(ce * mask), jnp.sum(mask)


def create_train_state(config: ml_collections.ConfigDict, vocab_size: int,
                       steps_per_epoch: int, num_steps: int, mesh, init_params=None,
                       schedule: optax.Schedule | None = None):
  """A fresh model and its train state, placed on the mesh.

  Args:
    init_params: if given, maps the fresh parameters (an nnx.State) to the ones to
      start from (e.g. `finetune.transplant`), before the optimizer state is made.
    schedule: the learning-rate schedule (default: `make_schedule` over `num_steps`).

  Returns:
    (model, graphdef, optimizer, state) where state is
    {'params', 'opt_state', 'step', 'rng' (raw key data), 'carry'}.
  """
  t = config.train
  model = model_lib.from_config(config, vocab_size)
  graphdef, params = nnx.split(model)
  if init_params is not None:
    params = init_params(params)
    nnx.update(model, params)
  optimizer = make_optimizer(t, schedule or make_schedule(t, steps_per_epoch, num_steps))
  state = {
      'params': params,
      'opt_state': optimizer.init(params),
      'step': jnp.int32(0),
      'rng': jax.random.key_data(jax.random.key(config.seed + 1)),
  }
  state = parallel.replicate(state, mesh)
  rows = parallel.padded_rows(t.batch_size, mesh)
  state['carry'] = parallel.shard_carry(model.initial_carry(rows), mesh)
  return model, graphdef, optimizer, state


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
    (new state, {'loss': mean nats per real target, 'grad_norm': global L2 norm of
    the gradients before clipping}).
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


def compile_steps(graphdef, optimizer, mesh):
  """The jitted (train_step, eval_step) of a run; the train state is donated.

  Both are traced with the mesh in context, so that layers that XLA cannot split
  by itself (the CPU kernels) run per device on their rows of the batch.
  """
  def train_fn(state, batch):
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
      # The key is stored as raw uint32 data so that checkpoints hold a plain array.
      s = dict(state, rng=jax.random.wrap_key_data(state['rng']))
      new, metrics = train_step(s, batch, graphdef=graphdef, optimizer=optimizer)
      return dict(new, rng=state['rng']), metrics

  def eval_fn(params, batch, carry):
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
      return eval_step(params, batch, carry, graphdef=graphdef)

  return jax.jit(train_fn, donate_argnums=0), jax.jit(eval_fn)


def _device_batch(b: data.Batch, mesh) -> dict:
  """A host batch split over the mesh, padded with masked rows to divide evenly."""
  rows = parallel.padded_rows(b.inputs.shape[0], mesh)
  put = lambda x: parallel.shard_batch(parallel.pad_rows(x, rows), mesh)
  return {'inputs': put(b.inputs), 'targets': put(b.targets), 'mask': put(b.mask),
          'reset': jnp.float32(b.reset)}


def _restore(ckpt, step: int, state: dict, batch_size: int, mesh) -> tuple[dict, dict]:
  """Restores the train state of `step` into `state`'s shapes and shardings. A run
  saved on another number of devices may have another count of padding rows in its
  carry: the real rows are kept and the padding made again."""
  rows = jax.tree.leaves(state['carry'])[0].shape[0]
  saved_rows = int(ckpt.restore_meta(step).get('carry_rows', batch_size))
  if saved_rows == rows:
    return ckpt.restore(step, state)
  as_saved = jax.tree.map(lambda c: jnp.zeros((saved_rows,) + c.shape[1:], c.dtype),
                          state['carry'])
  restored, meta = ckpt.restore(step, dict(state, carry=parallel.replicate(as_saved, mesh)))
  # Replicated: every process holds the whole carry on each of its devices.
  carry = jax.tree.map(
      lambda c: parallel.pad_rows(np.asarray(c.addressable_data(0))[:batch_size], rows),
      restored['carry'])
  return dict(restored, carry=parallel.shard_carry(carry, mesh)), meta


def evaluate(eval_fn, params, stream: data.BatchStream, zero_carry, mesh) -> dict:
  """Loss over every character of a split, state carried through each stream.

  The batches are dispatched without waiting; the per-batch sums are read once at
  the end and added in float64, in order.
  """
  sums, carry = [], zero_carry
  for b in stream.epoch_batches():
    t, c, carry = eval_fn(params, _device_batch(b, mesh), carry)
    sums.append((t, c))
  total, count = 0.0, 0.0
  for t, c in jax.device_get(sums):
    total += float(t)
    count += float(c)
  loss = total / count
  return {'loss': loss, 'bpc': loss / LN2}


# ----------------------------------------------------------------------------
# The data and the workdir


@dataclasses.dataclass
class Splits:
  """The corpus's vocabulary and its train / val / test batch streams."""
  vocab: data.Vocab
  train: data.BatchStream
  val: data.BatchStream
  test: data.BatchStream | None  # None when the test split is shorter than one window.
  train_chars: int


def build_data(config: ml_collections.ConfigDict) -> Splits:
  """Reads (and once prepares) the corpus and splits it into batch streams."""
  corpus = corpora.get_corpus(config.data)
  train_tokens, val_tokens, test_tokens = corpora.splits(corpus, config.data)
  # A data-scale study trains on a prefix of the train split; val/test stay the same.
  train_tokens = train_tokens[:max(2, int(round(len(train_tokens) * config.data.train_fraction)))]
  t, e = config.train, config.eval

  def stream(name, tokens, batch_size):
    try:
      return data.BatchStream(tokens, batch_size, t.seq_length)
    except UserError as err:
      raise UserError(f'{name} split: {err}') from None

  test = None
  if len(test_tokens) > e.batch_size * t.seq_length:
    test = stream('test', test_tokens, e.batch_size)
  unknown = corpus.vocab.unknown_chars(e.sample_prime) if e.sample_prime else None
  if unknown:
    raise UserError(f'eval.sample_prime has characters not in the corpus: {unknown}; change it')
  return Splits(corpus.vocab, stream('train', train_tokens, t.batch_size),
                stream('validation', val_tokens, e.batch_size), test, len(train_tokens))


def check_vocab_compatible(workdir: str, vocab: data.Vocab) -> None:
  path = os.path.join(workdir, 'vocab.json')
  if os.path.exists(path) and data.Vocab.load(path) != vocab:
    raise UserError(f'the corpus vocabulary differs from {path} (the run in that workdir'
                    ' used other data); use a new --workdir or the original data')


class RunFiles:
  """What a run writes beside its checkpoints (on the chief process only):
  config.json, vocab.json, metrics.jsonl (one line per evaluation), samples/,
  results.json and TensorBoard events (per-step training scalars too)."""

  def __init__(self, workdir: str, is_chief: bool):
    self.workdir = workdir
    self.is_chief = is_chief
    self.metrics_path = os.path.join(workdir, 'metrics.jsonl')
    self.tb = None
    if is_chief:
      self.tb = SummaryWriter(logdir=workdir)

  def start(self, config: ml_collections.ConfigDict, vocab: data.Vocab,
            resumed_step: int | None) -> None:
    if not self.is_chief:
      return
    if resumed_step is not None:
      self._truncate_metrics(resumed_step)
    os.makedirs(os.path.join(self.workdir, 'samples'), exist_ok=True)
    data.atomic_write(os.path.join(self.workdir, 'config.json'), config.to_json(indent=2))
    vocab.save(os.path.join(self.workdir, 'vocab.json'))

  def _truncate_metrics(self, last_step: int) -> None:
    """Drops metric lines written after the checkpoint a run resumes from (and a
    last line cut short by a killed process)."""
    if not os.path.exists(self.metrics_path):
      return
    kept = []
    with open(self.metrics_path) as f:
      for line in f:
        try:
          if json.loads(line)['step'] <= last_step:
            kept.append(line if line.endswith('\n') else line + '\n')
        except (ValueError, KeyError):
          continue
    data.atomic_write(self.metrics_path, ''.join(kept))

  def scalars(self, step: int, values: dict, prefix: str = '') -> None:
    if self.tb is not None:
      for k, v in values.items():
        self.tb.add_scalar(prefix + k, v, step)
      self.tb.flush()

  def eval_record(self, record: dict) -> None:
    if self.is_chief:
      with open(self.metrics_path, 'a') as f:
        f.write(json.dumps(record) + '\n')
      self.scalars(record['step'], {k: v for k, v in record.items() if k != 'step'})

  def sample(self, step: int, text: str) -> None:
    if self.is_chief:
      data.atomic_write(os.path.join(self.workdir, 'samples', f'step_{step:06d}.txt'), text)

  def results(self, results: dict) -> None:
    if self.is_chief:
      data.atomic_write(os.path.join(self.workdir, 'results.json'), json.dumps(results, indent=2))

  def close(self) -> None:
    if self.tb is not None:
      self.tb.close()


@jax.jit
def _accumulate(sums: dict, metrics: dict, step) -> dict:
  finite = jnp.isfinite(metrics['loss']) & jnp.isfinite(metrics['grad_norm'])
  return {'loss': sums['loss'] + metrics['loss'],
          'grad_norm': sums['grad_norm'] + metrics['grad_norm'],
          'first_bad_step': jnp.where(finite | (sums['first_bad_step'] > 0),
                                      sums['first_bad_step'], step)}


class _Interval:
  """Training loss, gradient norm and throughput since the last evaluation, and the
  first step whose loss or gradient was not finite. The sums stay on the device:
  nothing waits for a step to finish until a value is read."""

  def __init__(self, chars_per_step: int):
    self.chars_per_step = chars_per_step
    self.reset()

  def reset(self) -> None:
    self.sums = {'loss': jnp.float32(0.0), 'grad_norm': jnp.float32(0.0),
                 'first_bad_step': jnp.int32(0)}
    self.count, self.start, self.chars = 0, time.time(), 0

  def add(self, metrics: dict, step: int, first_step: bool) -> None:
    if first_step:  # Keep compilation out of the throughput figure.
      jax.block_until_ready(metrics['loss'])
      self.start, self.chars = time.time(), -self.chars_per_step
    self.sums = _accumulate(self.sums, metrics, step)
    self.count += 1
    self.chars += self.chars_per_step

  def first_bad_step(self) -> int:
    """The first step of the interval with a non-finite loss or gradient; 0 if none."""
    return int(self.sums['first_bad_step'])

  def summary(self) -> dict:
    return {'train_loss': float(self.sums['loss']) / self.count,
            'grad_norm': float(self.sums['grad_norm']) / self.count,
            'chars_per_sec': round(self.chars / (time.time() - self.start), 1)}


class _Clock:
  """Training time: wall-clock seconds inside the train loop, carried over resumes;
  evaluation, sampling and checkpointing are not counted."""

  def __init__(self, seconds_before: float = 0.0):
    self.before, self.started = seconds_before, None

  def resume(self) -> None:
    self.started = time.time()

  def pause(self) -> None:
    if self.started is not None:
      self.before += time.time() - self.started
      self.started = None

  def seconds(self) -> float:
    return self.before + (time.time() - self.started if self.started is not None else 0.0)


@dataclasses.dataclass
class _Stopping:
  """When a run ends: its step cap, early stopping on the validation loss, or its
  training-time budget. Saved in every checkpoint, so that a resumed run stops
  where an uninterrupted one would."""
  num_steps: int
  patience: int  # Evaluations without a new best; 0: off.
  budget_s: float  # Seconds of training time; 0: none.
  best_val_loss: float = math.inf
  evals_since_best: int = 0

  def record(self, val_loss: float) -> None:
    if val_loss < self.best_val_loss:
      self.best_val_loss, self.evals_since_best = val_loss, 0
    else:
      self.evals_since_best += 1

  def time_up(self, train_s: float) -> bool:
    return self.budget_s > 0 and train_s >= self.budget_s

  def reason(self, step: int, train_s: float) -> str | None:
    """Why the run is over at `step` ('num_steps', 'early_stopping',
    'time_budget'), or None while it goes on."""
    if step >= self.num_steps:
      return 'num_steps'
    if self.patience and self.evals_since_best >= self.patience:
      return 'early_stopping'
    if self.time_up(train_s):
      return 'time_budget'
    return None

  def state_dict(self) -> dict:
    best = self.best_val_loss
    return {'best_val_loss': None if math.isinf(best) else best,
            'evals_since_best': self.evals_since_best}

  def load_state_dict(self, d: dict) -> None:
    best = d.get('best_val_loss')
    self.best_val_loss = math.inf if best is None else float(best)
    self.evals_since_best = int(d.get('evals_since_best', 0))


class _StopSignals:
  """SIGTERM (what SLURM, Kubernetes and cloud TPUs send before preempting) and
  SIGINT become a request that the train loop answers after the current step:
  a checkpoint, then `Interrupted`. A second SIGINT interrupts at once."""

  def __enter__(self):
    self.received, self._previous = None, {}
    if threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # Ignored (e.g. `cmd &`): kept so.
          self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    if signum == signal.SIGINT and self.received == signal.SIGINT:
      raise KeyboardInterrupt
    self.received = signum
    logging.warning('%s received; saving a checkpoint after this step',
                    signal.Signals(signum).name)

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    return False


# ----------------------------------------------------------------------------
# The run


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after_step: int | None = None, devices=None,
                       eval_callback=None) -> dict:
  """Trains a CharLM as `config` says, in `workdir`, resuming if it holds a run.

  Args:
    config: see configs/default.py.
    workdir: output directory (`RunFiles`, and checkpoints/).
    stop_after_step: stop (without a final checkpoint) once this step is done, as
      a preemption would; used to test exact resume.
    devices: the devices to use (default: all).
    eval_callback: called on the chief after each evaluation as
      `eval_callback(step, model, vocab, record)` (e.g. to measure samples).

  The run ends at `train.num_steps`, after `train.early_stopping_patience`
  evaluations without a new best validation loss, or once `train.time_budget_minutes`
  of training time are spent, whichever comes first; the best checkpoint is then
  evaluated on the test split.

  Returns:
    The final results dict (also written to results.json), or the last metrics
    if `stop_after_step` stopped the run.

  Raises:
    UserError: a bad config, bad data, or a workdir that holds another run.
    Diverged: a non-finite loss or gradient (nothing after it is saved).
    Interrupted: SIGTERM or SIGINT, after a checkpoint at the current step.
  """
  config = config_lib.validate(config)
  workdir = os.path.abspath(workdir)
  config_lib.check_resume_compatible(workdir, config)
  if config.init_from:
    finetune.check_source(config)
  splits = build_data(config)
  check_vocab_compatible(workdir, splits.vocab)
  mesh = parallel.make_mesh(devices)
  t, e = config.train, config.eval
  parallel.note_padding(t.batch_size, mesh)
  parallel.note_padding(e.batch_size, mesh, 'eval.batch_size')
  is_chief = jax.process_index() == 0
  steps_per_epoch = len(splits.train)
  num_steps = t.num_steps or int(t.num_epochs * steps_per_epoch)
  ckpt = checkpoint_lib.Checkpointer(workdir, keep_latest=config.checkpoint.keep_latest)
  # The schedule's length: the step cap, or the steps the time budget allows.
  plan = None
  if t.schedule_from_budget and t.time_budget_minutes:
    plan = _budget_plan(config, splits, mesh, workdir, num_steps, is_chief,
                        fresh=ckpt.latest_step() is None)
    schedule_steps = plan['schedule_steps']
    schedule = budget_schedule(t, steps_per_epoch, plan)
  else:
    schedule_steps = num_steps
    schedule = make_schedule(t, steps_per_epoch, num_steps)
  init_record = {}

  def transplant(params):
    params, record = finetune.transplant(params, splits.vocab, config.init_from)
    init_record.update(record)
    return params

  fine_tune = config.init_from and ckpt.latest_step() is None  # A resumed run has its own.
  model, graphdef, optimizer, state = create_train_state(
      config, len(splits.vocab), steps_per_epoch, schedule_steps, mesh,
      transplant if fine_tune else None, schedule)
  train_fn, eval_fn = compile_steps(graphdef, optimizer, mesh)
  eval_carry = parallel.shard_carry(
      model.initial_carry(parallel.padded_rows(e.batch_size, mesh)), mesh)
  logging.info('Model %s: %d parameters; %d steps (%.2f epochs of %d windows), %d devices',
               'transformer' if config.model.arch == 'transformer' else config.model.cell,
               count_params(model), num_steps, num_steps / steps_per_epoch,
               steps_per_epoch, mesh.devices.size)

  files = RunFiles(workdir, is_chief)
  stopping = _Stopping(num_steps, t.early_stopping_patience, t.time_budget_minutes * 60)
  step, elapsed_before, run_start, pbar, clock = 0, 0.0, time.time(), None, _Clock()
  elapsed = lambda: elapsed_before + time.time() - run_start

  def save(val_loss):
    bad = interval.first_bad_step()
    if bad:  # Never save (or mark as best) parameters that a non-finite step touched.
      raise Diverged(
          f'the loss or gradient is not finite at step {bad}; the last good checkpoint is'
          f' step {ckpt.latest_step() or "none"}. Rerun with a lower'
          ' --config.train.learning_rate (it resumes from there), or start a new --workdir')
    ckpt.save(step, state, {'step': step, 'data': splits.train.state_dict(),
                            'elapsed_s': elapsed(), 'train_time_s': clock.seconds(),
                            'stopping': stopping.state_dict(), 'val_loss': val_loss,
                            'carry_rows': parallel.padded_rows(t.batch_size, mesh)}, val_loss)

  interval = _Interval(t.batch_size * t.seq_length)
  raising = False
  try:
    if ckpt.latest_step() is not None:
      state, meta = _restore(ckpt, ckpt.latest_step(), state, t.batch_size, mesh)
      splits.train.load_state_dict(meta['data'])
      step, elapsed_before = int(meta['step']), float(meta['elapsed_s'])
      # Runs saved before training time and early stopping were recorded count all time.
      clock = _Clock(float(meta.get('train_time_s', elapsed_before)))
      stopping.load_state_dict(meta.get('stopping', {}))
      logging.info('Resumed %s from step %d', workdir, step)
    files.start(config, splits.vocab, resumed_step=step if step else None)
    if init_record and is_chief:
      finetune.write_record(workdir, init_record)
      logging.info('Started from %s (step %d); characters new to it: %r', config.init_from,
                   init_record['source_step'], ''.join(init_record['new_chars']))
    run_start, start_step = time.time(), step
    # A budgeted run re-times itself a few times in this loop (`_next_retime`).
    retime_at = None if plan is None else _next_retime(plan, start_step, num_steps)
    timed_from = None  # (step, training seconds) once the first step of the loop is done.
    pbar = tqdm(total=num_steps, initial=step, disable=None if is_chief else True,
                unit='step', dynamic_ncols=True)
    record, eval_steps = {}, set(e.eval_steps or ())
    with _StopSignals() as signals:
      clock.resume()
      while stopping.reason(step, clock.seconds()) is None:
        batch = _device_batch(splits.train.next(), mesh)
        state, metrics = train_fn(state, batch)
        step += 1
        if retime_at is not None and timed_from is None:
          jax.block_until_ready(metrics['loss'])  # Compiled and run: time from here.
          timed_from = (step, clock.seconds())
        if step == retime_at:
          jax.block_until_ready(metrics['loss'])
          clock.pause()
          plan = _retime(plan, workdir, is_chief, step, timed_from, clock.seconds(),
                         stopping.budget_s, num_steps)
          timed_from = (step, clock.seconds())  # The next re-timing times from here.
          retime_at = _next_retime(plan, step, num_steps)
          schedule = budget_schedule(t, steps_per_epoch, plan)
          train_fn, _ = compile_steps(graphdef, make_optimizer(t, schedule), mesh)
          train_fn = train_fn.lower(state, batch).compile()  # Not charged to the budget.
          clock.resume()
        interval.add(metrics, step, first_step=step == start_step + 1)
        pbar.update(1)
        if step % config.log_every == 0:
          scalars = {'loss': float(metrics['loss']), 'grad_norm': float(metrics['grad_norm']),
                     'learning_rate': float(schedule(step - 1))}
          files.scalars(step, scalars, prefix='train/')
          pbar.set_postfix(loss=f"{scalars['loss']:.4f}", refresh=False)
        if (step % e.eval_every == 0 or step == num_steps or step in eval_steps
            or stopping.time_up(clock.seconds())):
          jax.block_until_ready(state['step'])
          clock.pause()
          if interval.first_bad_step():
            save(None)  # Raises Diverged.
          record = dict(step=step, epoch=round(step / steps_per_epoch, 4), **interval.summary(),
                        learning_rate=float(schedule(step - 1)))
          record.update(_evaluate_and_sample(config, graphdef, state['params'], splits, eval_fn,
                                             eval_carry, mesh, files, step))
          if not math.isfinite(record['val_loss']):
            raise Diverged(f'the validation loss is not finite at step {step}; the last good'
                           f' checkpoint is step {ckpt.latest_step() or "none"}. Rerun with a'
                           ' lower --config.train.learning_rate, or start a new --workdir')
          stopping.record(record['val_loss'])
          record.update(elapsed_s=round(elapsed(), 2), train_time_s=round(clock.seconds(), 2))
          files.eval_record(record)
          logging.info('step %d: train %.4f val %.4f nats (%.4f bpc), %.0f chars/s', step,
                       record['train_loss'], record['val_loss'], record['val_bpc'],
                       record['chars_per_sec'])
          if eval_callback is not None and is_chief:
            eval_callback(step, nnx.merge(graphdef, state['params']), splits.vocab, record)
          save(record['val_loss'])
          interval.reset()
          clock.resume()
        if signals.received:
          clock.pause()
          if step > (ckpt.latest_step() or 0):
            save(None)
          ckpt.wait()
          name = signal.Signals(signals.received).name
          raise Interrupted(f'{name}: stopped at step {step} with a checkpoint saved; run the'
                            ' same command to resume', signals.received)
        if stop_after_step is not None and step >= stop_after_step:
          return record
      clock.pause()
    ckpt.wait()
    return finish(ckpt, state, eval_fn, splits, eval_carry, mesh, files,
                  num_params=count_params(model), elapsed_s=elapsed(), train_time_s=clock.seconds(),
                  stopped=stopping.reason(step, clock.seconds()), config=config)
  except Exception as e:  # pylint: disable=broad-except
    raising = True
    reason = None if isinstance(e, UserError) else _storage_error(e)
    if reason is None:
      raise
    raise _storage_user_error(workdir, reason) from e
  except BaseException:
    raising = True
    raise
  finally:
    if pbar is not None:
      pbar.close()
    for close in (files.close, ckpt.close):  # ckpt.close waits for a save in flight.
      try:
        close()
      except Exception as e:  # pylint: disable=broad-except
        reason = _storage_error(e)
        if reason is None:
          raise
        if not raising:  # Else the error already on its way says more.
          raise _storage_user_error(workdir, reason) from e


SCHEDULE_FILE = 'schedule.json'
_TIMED_STEPS = 20
# Fractions of the schedule (as last laid) at which the train loop re-times it.
_RETIME_FRACTIONS = (0.05, 0.25, 0.5, 0.75, 0.9)


def _retimes(plan: dict) -> list[dict]:
  """The plan's re-timings, in order (a run of an earlier version recorded at most
  one, as 'retimed')."""
  return plan.get('retimes') or ([plan['retimed']] if 'retimed' in plan else [])


def _laid_steps(plan: dict) -> int:
  """The steps the schedule spans as last laid."""
  retimes = _retimes(plan)
  return retimes[-1]['schedule_steps'] if retimes else plan['schedule_steps']


def _next_retime(plan: dict, after_step: int, num_steps: int) -> int | None:
  """The step at which a budgeted run next re-times itself, or None: at the next of
  `_RETIME_FRACTIONS` of the schedule as last laid, and at least `_TIMED_STEPS` steps
  after `after_step` (where the loop starts timing, or last re-timed)."""
  done = len(_retimes(plan))
  if done >= len(_RETIME_FRACTIONS):
    return None
  steps = _laid_steps(plan)
  at = max(math.ceil(_RETIME_FRACTIONS[done] * steps), after_step + _TIMED_STEPS + 1)
  return at if at < min(steps, num_steps) else None


def _budget_plan(config, splits: Splits, mesh, workdir: str, num_steps: int,
                 is_chief: bool, fresh: bool) -> dict:
  """How many steps the learning-rate schedule spans under a time budget.

  A fresh run times `_TIMED_STEPS` steps (after compiling) on a throwaway copy of
  its state and lays the schedule over the steps the budget then allows (at most
  the step cap). At 5, 25, 50, 75 and 90% of the schedule the train loop times its
  own steps since the last timing (data, logging and all) and lays the rest of the
  schedule again (`_retime`), so that a machine whose speed drifts still ends the
  schedule near the budget's end. All counts are written to schedule.json and read
  back on resume, so that the schedule, and with it the run, resumes exactly.

  Returns:
    The plan: {'schedule_steps', 'seconds_per_step', 'timed_steps'} and, once the
    run is re-timed, 'retimes' (see `budget_schedule`).
  """
  path = os.path.join(workdir, SCHEDULE_FILE)
  if os.path.exists(path):
    with open(path) as f:
      plan = json.load(f)
    plan['schedule_steps'] = int(plan['schedule_steps'])
    return plan
  if not fresh:
    raise UserError(f'{workdir} has checkpoints but no {SCHEDULE_FILE}: it was not started'
                    ' with train.schedule_from_budget; resume it without that setting')
  t = config.train
  steps_per_epoch = len(splits.train)
  _, graphdef, optimizer, state = create_train_state(config, len(splits.vocab), steps_per_epoch,
                                                     num_steps, mesh)
  train_fn, _ = compile_steps(graphdef, optimizer, mesh)
  batches = [_device_batch(splits.train.window_at(i % steps_per_epoch), mesh)
             for i in range(_TIMED_STEPS + 1)]
  state, m = train_fn(state, batches[0])  # Compiles.
  jax.block_until_ready(m['loss'])
  start = time.time()
  for b in batches[1:]:
    state, m = train_fn(state, b)
  jax.block_until_ready(m['loss'])
  seconds_per_step = (time.time() - start) / _TIMED_STEPS
  steps = max(1, min(num_steps, int(t.time_budget_minutes * 60 / seconds_per_step)))
  if jax.process_count() > 1:  # Every process uses the chief's count.
    from jax.experimental import multihost_utils
    steps = int(multihost_utils.broadcast_one_to_all(np.int32(steps)))
  logging.info('Timed %.4f s per step: the schedule spans %d steps of the %.1f-minute budget',
               seconds_per_step, steps, t.time_budget_minutes)
  plan = {'schedule_steps': steps, 'seconds_per_step': seconds_per_step,
          'timed_steps': _TIMED_STEPS}
  if is_chief:
    os.makedirs(workdir, exist_ok=True)
    data.atomic_write(path, json.dumps(plan, indent=2))
  return plan


def _retime(plan: dict, workdir: str, is_chief: bool, step: int, timed_from: tuple,
            seconds: float, budget_s: float, num_steps: int) -> dict:
  """Lays the rest of the schedule over the steps the budget allows at the speed the
  train loop has run since `timed_from` (step, training seconds), up to `step` at
  `seconds`; records it in schedule.json and returns the new plan."""
  seconds_per_step = (seconds - timed_from[1]) / (step - timed_from[0])
  steps = step + int(max(budget_s - seconds, 0.0) / seconds_per_step)
  steps = max(step + 1, min(num_steps, steps))
  if jax.process_count() > 1:  # Every process uses the chief's count.
    from jax.experimental import multihost_utils
    steps = int(multihost_utils.broadcast_one_to_all(np.int32(steps)))
  logging.info('Re-timed %.4f s per step over steps %d-%d: the schedule spans %d steps'
               ' from step %d on (was %d)', seconds_per_step, timed_from[0] + 1, step, steps,
               step, _laid_steps(plan))
  retimed = {'at_step': step, 'schedule_steps': steps, 'seconds_per_step': seconds_per_step,
             'timed_steps': step - timed_from[0]}
  earlier = _retimes(plan)
  plan = {k: v for k, v in plan.items() if k != 'retimed'}
  plan['retimes'] = earlier + [retimed]
  if is_chief:
    data.atomic_write(os.path.join(workdir, SCHEDULE_FILE), json.dumps(plan, indent=2))
  return plan


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
_STORAGE_MESSAGES = ('No space left on device', 'Disk quota exceeded', 'Read-only file system',
                     'Permission denied')


def _storage_error(e: BaseException) -> str | None:
  """What is wrong with the disk, if `e` (ours, or Orbax's from its writer thread)
  says the workdir could not be written; else None."""
  if isinstance(e, OSError) and e.errno in _STORAGE_ERRNOS:
    return os.strerror(e.errno)
  text = str(e)
  return next((m for m in _STORAGE_MESSAGES if m in text), None)


def _storage_user_error(workdir: str, reason: str) -> UserError:
  return UserError(f'cannot write to {workdir}: {reason}. The last complete checkpoint'
                   f' (step {_last_complete_step(workdir)}) is intact: free space or fix the'
                   ' permissions, then run the same command to resume')


def _last_complete_step(workdir: str):
  try:
    ckpt = checkpoint_lib.Checkpointer(workdir, read_only=True)
  except UserError:
    return 'none'
  try:
    return ckpt.latest_step() or 'none'
  finally:
    ckpt.close()


def _evaluate_and_sample(config, graphdef, params, splits: Splits, eval_fn, eval_carry, mesh,
                         files: RunFiles, step: int) -> dict:
  """The validation loss, and a sample written to samples/ (chief only)."""
  val = evaluate(eval_fn, params, splits.val, eval_carry, mesh)
  e = config.eval
  if files.is_chief and e.sample_length > 0 and e.sample_prime:
    files.sample(step, sample_lib.generate_text(
        nnx.merge(graphdef, params), splits.vocab, e.sample_prime, length=e.sample_length,
        seed=config.seed, temperature=e.sample_temperature)[0])
  return {'val_loss': val['loss'], 'val_bpc': val['bpc']}


def finish(ckpt, state, eval_fn, splits: Splits, eval_carry, mesh, files: RunFiles, *,
           num_params: int, elapsed_s: float, train_time_s: float, stopped: str,
           config: ml_collections.ConfigDict) -> dict:
  """Evaluates the best checkpoint on the test split; writes results.json."""
  best = ckpt.best_step()
  t = config.train
  # The best step may have been saved on another number of devices.
  best_state, meta = _restore(ckpt, best, state, t.batch_size, mesh)
  results = {'best_step': best, 'best_val_loss': meta['val_loss'],
             'best_val_bpc': meta['val_loss'] / LN2, 'num_params': num_params,
             'final_step': int(state['step']), 'stopped': stopped,
             'early_stopping_patience': t.early_stopping_patience,
             'time_budget_minutes': t.time_budget_minutes,
             'elapsed_s': round(elapsed_s, 2), 'train_time_s': round(train_time_s, 2),
             'train_split_chars': splits.train_chars}
  if splits.test is not None:
    test = evaluate(eval_fn, best_state['params'], splits.test, eval_carry, mesh)
    results.update(test_loss=test['loss'], test_bpc=test['bpc'])
  files.results(results)
  logging.info('Results: %s', results)
  return results
