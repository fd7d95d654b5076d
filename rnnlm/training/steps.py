"""The train state and the two jitted steps.

One jitted train step does the whole update (forward over a window, cross-entropy,
gradients, clipping, optimizer), and hands back the final carry, which the next
window starts from. Everything a step needs comes in as arguments.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from rnnlm import data
from rnnlm.model import charlm as model_lib
from rnnlm.training import optim
from rnnlm.training import parallel

LN2 = math.log(2.0)


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
    schedule: the learning-rate schedule (default: `optim.make_schedule` over
      `num_steps`).

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
  optimizer = optim.make_optimizer(
      t, schedule or optim.make_schedule(t, steps_per_epoch, num_steps))
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


def device_batch(b: data.Batch, mesh) -> dict:
  """A host batch split over the mesh, padded with masked rows to divide evenly."""
  rows = parallel.padded_rows(b.inputs.shape[0], mesh)
  put = lambda x: parallel.shard_batch(parallel.pad_rows(x, rows), mesh)
  return {'inputs': put(b.inputs), 'targets': put(b.targets), 'mask': put(b.mask),
          'reset': jnp.float32(b.reset)}


def restore(ckpt, step: int, state: dict, batch_size: int, mesh) -> tuple[dict, dict]:
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
    t, c, carry = eval_fn(params, device_batch(b, mesh), carry)
    sums.append((t, c))
  total, count = 0.0, 0.0
  for t, c in jax.device_get(sums):
    total += float(t)
    count += float(c)
  loss = total / count
  return {'loss': loss, 'bpc': loss / LN2}
