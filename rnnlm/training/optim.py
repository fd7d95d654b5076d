"""Learning-rate schedules and the optimizer (optax), from `config.train`."""

from __future__ import annotations

import optax


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
