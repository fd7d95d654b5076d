"""A time-budgeted run's learning-rate schedule: laid over the steps the budget
allows, and laid again as the run finds out how fast it goes.

A fresh run times `_TIMED_STEPS` steps (after compiling) on a throwaway copy of its
state and lays the schedule over the steps the budget then allows (at most the step
cap): `plan`. At 5, 25, 50, 75 and 90% of the schedule the train loop times its own
steps since the last timing (data, logging and all) and lays the rest of the schedule
again (`Retimer`), so that a machine whose speed drifts still ends the schedule near
the budget's end. All counts are written to schedule.json and read back on resume,
so that the schedule, and with it the run, resumes exactly.
"""

from __future__ import annotations

import functools
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from rnnlm import data
from rnnlm.errors import UserError
from rnnlm.training import optim
from rnnlm.training import periodic
from rnnlm.training import steps as steps_lib


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


def make_plan(config, splits, mesh, workdir: str, num_steps: int, is_chief: bool,
              fresh: bool) -> dict:
  """How many steps the learning-rate schedule spans under a time budget: read from
  the workdir's schedule.json, or (a fresh run) from timing `_TIMED_STEPS` steps
  after compiling, on a throwaway copy of the run's state.

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
  _, graphdef, optimizer, state = steps_lib.create_train_state(config, len(splits.vocab), steps_per_epoch,
                                                     num_steps, mesh)
  train_fn, _ = steps_lib.compile_steps(graphdef, optimizer, mesh)
  batches = [steps_lib.device_batch(splits.train.window_at(i % steps_per_epoch), mesh)
             for i in range(_TIMED_STEPS + 1)]
  state, m = train_fn(state, batches[0])  # Compiles.
  jax.block_until_ready(m['loss'])
  start = periodic.now()
  for b in batches[1:]:
    state, m = train_fn(state, b)
  jax.block_until_ready(m['loss'])
  seconds_per_step = (periodic.now() - start) / _TIMED_STEPS
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


def retime(plan: dict, workdir: str, is_chief: bool, step: int, timed_from: tuple,
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


def budget_schedule(train_config, steps_per_epoch: int, plan: dict) -> optax.Schedule:
  """The schedule a time-budgeted run follows, from its schedule.json `plan`: laid over
  `plan['schedule_steps']`, and from each re-timing's `at_step` on (`plan['retimes']`)
  over that re-timing's `schedule_steps`."""
  schedule = optim.make_schedule(train_config, steps_per_epoch, plan['schedule_steps'])
  for retimed in _retimes(plan):
    later = optim.make_schedule(train_config, steps_per_epoch, retimed['schedule_steps'])
    # optax calls a schedule with the count of updates already made: step s uses s - 1.
    schedule = functools.partial(_switch, schedule, later, retimed['at_step'])
  return schedule


def _switch(first: optax.Schedule, later: optax.Schedule, at: int, count):
  return jnp.where(count < at, first(count), later(count))


class Retimer:
  """The loop's unit that re-times a budgeted run: times its steps from the first one
  done, and at each re-timing step (`_next_retime`) lays the rest of the schedule again
  (`retime`) and compiles the train step with it, off the training clock."""

  def __init__(self, budget_plan: dict, start_step: int, num_steps: int):
    self.plan, self.num_steps = budget_plan, num_steps
    self.at = _next_retime(budget_plan, start_step, num_steps)
    self.timed_from = None  # (step, training seconds) once the first step is done.

  def __call__(self, run, metrics: dict, batch: dict) -> None:
    if self.at is None:
      return
    if self.timed_from is None:
      jax.block_until_ready(metrics['loss'])  # Compiled and run: time from here.
      self.timed_from = (run.step, run.clock.seconds())
    if run.step != self.at:
      return
    jax.block_until_ready(metrics['loss'])
    run.clock.pause()
    t = run.config.train
    self.plan = retime(self.plan, run.workdir, run.is_chief, run.step, self.timed_from,
                       run.clock.seconds(), run.stopping.budget_s, self.num_steps)
    self.timed_from = (run.step, run.clock.seconds())  # The next re-timing times from here.
    self.at = _next_retime(self.plan, run.step, self.num_steps)
    run.schedule = budget_schedule(t, run.steps_per_epoch, self.plan)
    train_fn, _ = steps_lib.compile_steps(run.graphdef, optim.make_optimizer(t, run.schedule),
                                          run.mesh)
    run.train_fn = train_fn.lower(run.state, batch).compile()  # Not charged to the budget.
    run.clock.resume()
