"""Each unit of the train loop on its own, against hand-worked cases (a fake run, a
clock that reads what the test says)."""

import math
import signal
import types

import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm.errors import Diverged, Interrupted, UserError
from rnnlm.training import budget, periodic


@pytest.fixture
def clock(monkeypatch):
  """periodic.now() reads `clock.t`, set by the test."""
  c = types.SimpleNamespace(t=0.0)
  monkeypatch.setattr(periodic, 'now', lambda: c.t)
  return c


def test_clock_counts_only_while_running_and_carries_over(clock):
  c = periodic.Clock(seconds_before=5.0)
  clock.t = 100.0
  assert c.seconds() == 5.0  # Not started.
  c.resume()
  clock.t = 102.5
  assert c.seconds() == 7.5
  c.pause()
  clock.t = 200.0  # Paused (evaluating): not counted.
  assert c.seconds() == 7.5
  c.resume()
  clock.t = 201.0
  c.pause()
  assert c.seconds() == 8.5


def test_stopping_rules_by_hand():
  s = periodic.Stopping(num_steps=100, patience=2, budget_s=60.0, min_delta=0.01)
  assert s.reason(99, 59.9) is None
  assert s.reason(100, 0.0) == 'num_steps'
  assert s.reason(10, 60.0) == 'time_budget'
  for loss, since in ((2.0, 0), (1.995, 1), (1.985, 0), (1.98, 1), (1.99, 2)):
    s.record(loss)  # 1.995 and 1.98 beat the best by no more than 0.01: not better.
    assert s.evals_since_best == since, loss
  assert s.best_val_loss == 1.985 and s.reason(10, 0.0) == 'early_stopping'
  again = periodic.Stopping(num_steps=100, patience=2, budget_s=0.0)
  again.load_state_dict(s.state_dict())
  assert (again.best_val_loss, again.evals_since_best) == (1.985, 2)
  assert periodic.Stopping(1, 0, 0.0).state_dict()['best_val_loss'] is None  # No inf in JSON.
  # Early stopping ends no run before start_step; the other rules are not held back.
  late = periodic.Stopping(num_steps=100, patience=2, budget_s=60.0, start_step=12)
  late.load_state_dict(s.state_dict())
  assert late.reason(11, 0.0) is None and late.reason(12, 0.0) == 'early_stopping'
  assert late.reason(11, 60.0) == 'time_budget'


def test_interval_averages_and_finds_the_first_bad_step():
  i = periodic.Interval(chars_per_step=10, start_step=0)
  run = types.SimpleNamespace(step=0)
  for step, loss in ((1, 3.0), (2, 1.0), (3, float('nan')), (4, float('inf'))):
    run.step = step
    i(run, {'loss': jnp.float32(loss), 'grad_norm': jnp.float32(2.0)}, None)
  assert i.first_bad_step() == 3
  i.reset()
  for step, loss in ((5, 3.0), (6, 1.0)):
    run.step = step
    i(run, {'loss': jnp.float32(loss), 'grad_norm': jnp.float32(step)}, None)
  s = i.summary()
  assert i.first_bad_step() == 0 and s['train_loss'] == 2.0 and s['grad_norm'] == 5.5


def _run(**kw):
  """A fake Run with what the units read."""
  config = types.SimpleNamespace(
      log_every=2, eval=types.SimpleNamespace(eval_every=10, eval_steps=(3,)),
      train=types.SimpleNamespace(batch_size=4))
  saved = []
  ckpt = types.SimpleNamespace(latest_step=lambda: saved[-1] if saved else None,
                               wait=lambda: None)
  run = types.SimpleNamespace(config=config, step=0, num_steps=25, ckpt=ckpt, saved=saved,
                              clock=periodic.Clock(), schedule=lambda count: 0.5 * count,
                              stopping=periodic.Stopping(25, 0, 0.0),
                              save=lambda val_loss: saved.append(run.step))
  run.__dict__.update(kw)
  return run


def test_evaluation_is_due_at_its_steps():
  run = _run()
  e = periodic.Evaluation(run)
  due = []
  for step in range(1, 26):
    run.step = step
    due.append(step) if e.due(run) else None
  assert due == [3, 10, 20, 25]  # eval_steps, every 10, and the last step.
  run.step, run.stopping = 7, periodic.Stopping(25, 0, budget_s=1.0)
  run.clock = periodic.Clock(seconds_before=1.0)
  assert e.due(run)  # The time budget is spent: evaluate where the run stops.


def test_evaluation_refuses_to_save_after_a_bad_step(monkeypatch):
  run = _run(interval=periodic.Interval(10), step=10)
  run.state = {'step': jnp.int32(10)}
  run.interval.sums['first_bad_step'] = jnp.int32(7)
  run.save = lambda val_loss: periodic.Run.save(run, val_loss)
  run.ckpt.save = lambda *a: pytest.fail('saved parameters that a bad step touched')
  with pytest.raises(Diverged, match='not finite at step 7'):
    periodic.Evaluation(run)(run, {}, None)


def test_progress_logs_every_log_every_steps():
  written = []
  bar = types.SimpleNamespace(update=lambda n: None, set_postfix=lambda **kw: None)
  run = _run(files=types.SimpleNamespace(scalars=lambda step, v, prefix: written.append(
      (step, v['loss'], v['learning_rate']))))
  p = periodic.Progress(run, bar)
  for step in (1, 2, 3, 4):
    run.step = step
    p(run, {'loss': jnp.float32(step), 'grad_norm': jnp.float32(0.0)}, None)
  # The rate of step s is the schedule at s - 1 (optax counts updates already made).
  assert written == [(2, 2.0, 0.5), (4, 4.0, 1.5)]


def test_signal_stop_saves_once_and_raises():
  signals = types.SimpleNamespace(received=None)
  run = _run(step=5)
  unit = periodic.SignalStop(signals)
  unit(run, {}, None)
  assert run.saved == []  # No signal: nothing.
  signals.received = signal.SIGTERM
  with pytest.raises(Interrupted, match='SIGTERM: stopped at step 5') as e:
    unit(run, {}, None)
  assert run.saved == [5] and e.value.signum == signal.SIGTERM
  with pytest.raises(Interrupted):  # A checkpoint of this step exists: not saved again.
    unit(run, {}, None)
  assert run.saved == [5]


def test_self_signal_is_read_from_the_environment(monkeypatch):
  monkeypatch.delenv(periodic.SelfSignal.ENV, raising=False)
  assert periodic.SelfSignal.from_env() is None
  for bad in ('SIGNOPE@3', 'SIGTERM@three', 'SIGTERM'):
    monkeypatch.setenv(periodic.SelfSignal.ENV, bad)
    with pytest.raises(UserError, match='is not NAME@STEP'):
      periodic.SelfSignal.from_env()
  monkeypatch.setenv(periodic.SelfSignal.ENV, 'SIGUSR1@3')
  unit = periodic.SelfSignal.from_env()
  got = []
  previous = signal.signal(signal.SIGUSR1, lambda *a: got.append(run.step))
  try:
    run = _run()
    for step in range(1, 6):
      run.step = step
      unit(run, {'loss': jnp.float32(0.0)}, None)
  finally:
    signal.signal(signal.SIGUSR1, previous)
  assert got == [3]  # Once, after step 3.


def test_retimer_lays_the_rest_of_the_schedule_from_the_loops_own_speed(clock, tmp_path,
                                                                         monkeypatch):
  monkeypatch.setattr(budget, '_RETIME_FRACTIONS', (0.1,))
  compiled = []
  monkeypatch.setattr(budget.steps_lib, 'compile_steps', lambda g, opt, mesh: (
      types.SimpleNamespace(lower=lambda s, b: types.SimpleNamespace(
          compile=lambda: compiled.append(1) or 'new step')), None))
  plan = {'schedule_steps': 1000, 'seconds_per_step': 0.1, 'timed_steps': 20}
  t = types.SimpleNamespace(lr_schedule='constant', learning_rate=1e-3, optimizer='adam',
                            adam_b1=0.9, adam_b2=0.999, grad_clip_norm=0.0)
  run = _run(workdir=str(tmp_path), is_chief=True, steps_per_epoch=10, graphdef=None,
             mesh=None, state=None, stopping=periodic.Stopping(10 ** 6, 0, budget_s=60.0))
  run.config.train = t
  r = budget.Retimer(plan, start_step=0, num_steps=10 ** 6)
  assert r.at == 100  # 10% of the 1,000 steps laid.
  run.clock.resume()
  for step in range(1, 101):
    run.step = step
    clock.t = 0.2 * step  # The loop runs at 0.2 s per step, twice the timed speed.
    r(run, {'loss': jnp.float32(0.0)}, None)
  # Timed over steps 2-100: 0.2 s each; 20 s spent, 40 s left: 200 more steps.
  [retimed] = r.plan['retimes']
  assert retimed['at_step'] == 100 and retimed['timed_steps'] == 99
  assert retimed['seconds_per_step'] == pytest.approx(0.2)
  assert retimed['schedule_steps'] == 100 + 200
  assert run.train_fn == 'new step' and compiled == [1] and r.at is None
  assert math.isclose(float(run.schedule(150)), 1e-3, rel_tol=1e-6)
  assert np.isclose(run.clock.seconds(), 20.0)
