"""What the train loop does besides the step, as small units it calls in order.

The loop (`train.train_and_evaluate`) stays flat: take a batch, run the jitted step,
then `for unit in units: unit(run, metrics, batch)`. Each unit owns its state and
its own condition (as CLU's periodic actions and Levanter's hooks do):

- `Interval`: the training loss, gradient norm and throughput since the last
  evaluation, and the first non-finite step;
- `Progress`: the progress bar and the per-step TensorBoard scalars;
- `Evaluation`: every `eval.eval_every` steps (and at `eval.eval_steps`, the last
  step, and when the time budget is up): the validation loss, a sample, the
  metrics line, the stopping rule, a checkpoint;
- `SignalStop`: SIGTERM or SIGINT received: a checkpoint, then `Interrupted`;
- `budget.Retimer` (a budgeted run only): re-times the schedule.

`Run` is what they share; `Clock` (training time), `Stopping` (when the run ends)
and `StopSignals` (what turns a signal into a request) are the state they keep.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import threading
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging
from flax import nnx

from rnnlm.errors import Diverged, Interrupted, UserError
from rnnlm.training import parallel
from rnnlm.training import sample as sample_lib
from rnnlm.training import steps as steps_lib


@jax.jit
def _accumulate(sums: dict, metrics: dict, step) -> dict:
  finite = jnp.isfinite(metrics['loss']) & jnp.isfinite(metrics['grad_norm'])
  return {'loss': sums['loss'] + metrics['loss'],
          'grad_norm': sums['grad_norm'] + metrics['grad_norm'],
          'first_bad_step': jnp.where(finite | (sums['first_bad_step'] > 0),
                                      sums['first_bad_step'], step)}


class Interval:
  """Training loss, gradient norm and throughput since the last evaluation, and the
  first step whose loss or gradient was not finite. The sums stay on the device:
  nothing waits for a step to finish until a value is read."""

  def __init__(self, chars_per_step: int, start_step: int = 0):
    self.chars_per_step, self.start_step = chars_per_step, start_step
    self.reset()

  def __call__(self, run: 'Run', metrics: dict, batch: dict) -> None:
    del batch
    self.add(metrics, run.step, first_step=run.step == self.start_step + 1)

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


def now() -> float:
  """The seconds that training time, a time budget and its re-timing are read from.
  Tests replace it with a clock that advances by a fixed amount per reading, so that
  what a budget does depends on step counts, not on the machine's speed."""
  return time.time()


class Clock:
  """Training time: wall-clock seconds inside the train loop, carried over resumes;
  evaluation, sampling and checkpointing are not counted."""

  def __init__(self, seconds_before: float = 0.0):
    self.before, self.started = seconds_before, None

  def resume(self) -> None:
    self.started = now()

  def pause(self) -> None:
    if self.started is not None:
      self.before += now() - self.started
      self.started = None

  def seconds(self) -> float:
    return self.before + (now() - self.started if self.started is not None else 0.0)


@dataclasses.dataclass
class Stopping:
  """When a run ends: its step cap, early stopping on the validation loss, or its
  training-time budget. Saved in every checkpoint, so that a resumed run stops
  where an uninterrupted one would."""
  num_steps: int
  patience: int  # Evaluations without a new best; 0: off.
  budget_s: float  # Seconds of training time; 0: none.
  best_val_loss: float = math.inf
  evals_since_best: int = 0
  min_delta: float = 0.0  # An evaluation counts as better only by more than this.
  start_step: int = 0  # Early stopping ends no run before this step.
  diverged: bool = False  # Set where a divergence ends the run (train.stop_on_divergence).

  @classmethod
  def from_config(cls, t: ml_collections.ConfigDict, num_steps: int,
                  steps_per_epoch: int) -> 'Stopping':
    """The rules a config's `train` fields set."""
    return cls(num_steps, t.early_stopping_patience, t.time_budget_minutes * 60,
               min_delta=t.early_stopping_min_delta,
               start_step=round(t.early_stopping_start_epoch * steps_per_epoch))

  def record(self, val_loss: float) -> None:
    if val_loss < self.best_val_loss - self.min_delta:
      self.best_val_loss, self.evals_since_best = val_loss, 0
    else:
      self.evals_since_best += 1

  def time_up(self, train_s: float) -> bool:
    return self.budget_s > 0 and train_s >= self.budget_s

  def reason(self, step: int, train_s: float) -> str | None:
    """Why the run is over at `step` ('diverged', 'num_steps', 'early_stopping',
    'time_budget'), or None while it goes on."""
    if self.diverged:
      return 'diverged'
    if step >= self.num_steps:
      return 'num_steps'
    if (self.patience and self.evals_since_best >= self.patience
        and step >= self.start_step):
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


class StopSignals:
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
# What the units share, and the units


@dataclasses.dataclass
class Run:
  """A run in progress: its fixed parts, and the state the loop and its units change."""
  config: ml_collections.ConfigDict
  workdir: str
  splits: Any  # train.Splits
  mesh: Any
  ckpt: Any  # checkpoint.Checkpointer
  files: Any  # run_files.RunFiles
  graphdef: Any
  eval_fn: Callable
  eval_carry: Any
  train_fn: Callable
  schedule: Callable
  state: dict
  stopping: Stopping
  steps_per_epoch: int
  num_steps: int
  is_chief: bool
  step: int = 0
  clock: Clock = dataclasses.field(default_factory=Clock)
  interval: Interval | None = None
  elapsed_before: float = 0.0
  started: float = dataclasses.field(default_factory=time.time)
  record: dict = dataclasses.field(default_factory=dict)  # The last evaluation's.

  def elapsed(self) -> float:
    """Wall-clock seconds of the run, over all its resumes."""
    return self.elapsed_before + time.time() - self.started

  def save(self, val_loss: float | None) -> None:
    """A checkpoint of the current step (with `val_loss` when just evaluated).

    Raises:
      Diverged: a step since the last evaluation had a non-finite loss or gradient;
        such parameters are never saved (nor marked best).
    """
    bad = self.interval.first_bad_step() if self.interval is not None else 0
    if bad:
      raise Diverged(
          f'the loss or gradient is not finite at step {bad}; the last good checkpoint is'
          f' step {self.ckpt.latest_step() or "none"}. Rerun with a lower'
          ' --config.train.learning_rate (it resumes from there), or start a new --workdir')
    rows = parallel.padded_rows(self.config.train.batch_size, self.mesh)
    self.ckpt.save(self.step, self.state, {
        'step': self.step, 'data': self.splits.train.state_dict(), 'elapsed_s': self.elapsed(),
        'train_time_s': self.clock.seconds(), 'stopping': self.stopping.state_dict(),
        'val_loss': val_loss, 'carry_rows': rows}, val_loss)


class Progress:
  """The progress bar, and every `log_every` steps the step's loss, gradient norm and
  learning rate to TensorBoard."""

  def __init__(self, run: Run, bar):
    self.bar, self.every = bar, run.config.log_every

  def __call__(self, run: Run, metrics: dict, batch: dict) -> None:
    del batch
    self.bar.update(1)
    if run.step % self.every == 0:
      scalars = {'loss': float(metrics['loss']), 'grad_norm': float(metrics['grad_norm']),
                 'learning_rate': float(run.schedule(run.step - 1))}
      run.files.scalars(run.step, scalars, prefix='train/')
      self.bar.set_postfix(loss=f"{scalars['loss']:.4f}", refresh=False)


def _stops_on_divergence(run: Run, why: str) -> bool:
  """With train.stop_on_divergence, a divergence ends the run as early stopping would
  (its best checkpoint, saved before, counts; nothing after it is saved): True. Else
  False, and the caller raises `Diverged`."""
  if not getattr(run.config.train, 'stop_on_divergence', False):
    return False
  logging.warning('%s: the run stops (train.stop_on_divergence); its best checkpoint,'
                  ' step %s, counts', why, run.ckpt.best_step())
  run.stopping.diverged = True
  return True


class Evaluation:
  """Every `eval.eval_every` steps, at each of `eval.eval_steps`, at the step cap and
  when the time budget runs out: the validation loss over the whole split, a sample,
  a line of metrics.jsonl, the stopping rule's record and a checkpoint. Its time is
  not training time.

  `callback(step, model, vocab, record)` is called on the chief after each.
  """

  def __init__(self, run: Run, callback: Callable | None = None):
    e = run.config.eval
    self.every, self.at, self.callback = e.eval_every, set(e.eval_steps or ()), callback

  def due(self, run: Run) -> bool:
    step = run.step
    return (step % self.every == 0 or step == run.num_steps or step in self.at
            or run.stopping.time_up(run.clock.seconds()))

  def __call__(self, run: Run, metrics: dict, batch: dict) -> None:
    del metrics, batch
    if not self.due(run):
      return
    jax.block_until_ready(run.state['step'])
    run.clock.pause()
    bad = run.interval.first_bad_step()
    if bad:
      if _stops_on_divergence(run, f'the loss or gradient is not finite at step {bad}'):
        return
      run.save(None)  # Raises Diverged.
    record = dict(step=run.step, epoch=round(run.step / run.steps_per_epoch, 4),
                  **run.interval.summary(), learning_rate=float(run.schedule(run.step - 1)))
    record.update(self.validate_and_sample(run))
    if not math.isfinite(record['val_loss']):
      if _stops_on_divergence(run, f'the validation loss is not finite at step {run.step}'):
        return
      raise Diverged(f'the validation loss is not finite at step {run.step}; the last good'
                     f' checkpoint is step {run.ckpt.latest_step() or "none"}. Rerun with a'
                     ' lower --config.train.learning_rate, or start a new --workdir')
    run.stopping.record(record['val_loss'])
    record.update(elapsed_s=round(run.elapsed(), 2), train_time_s=round(run.clock.seconds(), 2))
    run.files.eval_record(record)
    logging.info('step %d: train %.4f val %.4f nats (%.4f bpc), %.0f chars/s', run.step,
                 record['train_loss'], record['val_loss'], record['val_bpc'],
                 record['chars_per_sec'])
    if self.callback is not None and run.is_chief:
      self.callback(run.step, nnx.merge(run.graphdef, run.state['params']), run.splits.vocab,
                    record)
    run.save(record['val_loss'])
    run.record = record
    run.interval.reset()
    run.clock.resume()

  @staticmethod
  def validate_and_sample(run: Run) -> dict:
    """The validation loss, and a sample written to samples/ (chief only)."""
    params = run.state['params']
    val = steps_lib.evaluate(run.eval_fn, params, run.splits.val, run.eval_carry, run.mesh)
    e, config = run.config.eval, run.config
    if run.is_chief and e.sample_length > 0 and e.sample_prime:
      run.files.sample(run.step, sample_lib.generate_text(
          nnx.merge(run.graphdef, params), run.splits.vocab, e.sample_prime,
          length=e.sample_length, seed=config.seed, temperature=e.sample_temperature)[0])
    return {'val_loss': val['loss'], 'val_bpc': val['bpc']}


class SignalStop:
  """Answers a SIGTERM or SIGINT (`StopSignals`) after the current step: a checkpoint
  (unless this step has one), then `Interrupted`."""

  def __init__(self, signals: StopSignals):
    self.signals = signals

  def __call__(self, run: Run, metrics: dict, batch: dict) -> None:
    del metrics, batch
    if not self.signals.received:
      return
    run.clock.pause()
    if run.step > (run.ckpt.latest_step() or 0):
      run.save(None)
    run.ckpt.wait()
    name = signal.Signals(self.signals.received).name
    raise Interrupted(f'{name}: stopped at step {run.step} with a checkpoint saved; run the'
                      ' same command to resume', self.signals.received)


class SelfSignal:
  """Fault injection, for tests that stop a run at an exact step rather than at a
  moment in time: with `RNNLM_SELF_SIGNAL=NAME@STEP` in the environment (e.g.
  `SIGKILL@250`), the process sends itself signal NAME once step STEP is done (the
  first step of a run resumed past it), before the other units see the step. Put
  first among the units; `from_env` gives None when the variable is unset."""

  ENV = 'RNNLM_SELF_SIGNAL'

  def __init__(self, signum: int, step: int):
    self.signum, self.step, self.fired = signum, step, False

  @classmethod
  def from_env(cls) -> 'SelfSignal | None':
    spec = os.environ.get(cls.ENV, '')
    if not spec:
      return None
    name, _, step = spec.partition('@')
    try:
      return cls(signal.Signals[name], int(step))
    except (KeyError, ValueError):
      raise UserError(f'{cls.ENV}={spec!r} is not NAME@STEP (e.g. SIGTERM@250); unset it'
                      ' or fix it') from None

  def __call__(self, run: Run, metrics: dict, batch: dict) -> None:
    del batch
    if not self.fired and run.step >= self.step:
      self.fired = True
      jax.block_until_ready(metrics['loss'])
      logging.warning('%s=%s: sending myself %s after step %d', self.ENV,
                      os.environ[self.ENV], signal.Signals(self.signum).name, run.step)
      os.kill(os.getpid(), self.signum)
