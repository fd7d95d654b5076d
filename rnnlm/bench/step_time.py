"""Time of a whole training step (forward, backward, optimizer update) for variants
of a config, measured in interleaved rounds so that the machine's drift falls on
every variant alike.

A variant is a name and config overrides, e.g. `dropout:model.dropout=0.1`; the
pseudo-field `impl.dropout` (`lanes` or `bernoulli`) picks the dropout mask
implementation at compile time (`rnnlm.model.dropout.IMPLEMENTATIONS`), and
`impl.stack=K` trains K models of the variant's shape (K consecutive seeds) in one compiled
step, `jax.vmap` over their train states, on the same batch: a step then counts K
models' characters. (The CPU kernels run a vmapped call model by model, so a stacked
variant compares fairly with `model.recurrence=scan`.)
"""

from __future__ import annotations

import ast
import contextlib
import statistics
import time

import jax
import ml_collections

from rnnlm import config as config_lib
from rnnlm.model import dropout as dropout_lib
from rnnlm.training import parallel
from rnnlm.studies import sweep
from rnnlm.training import train
from rnnlm.errors import UserError
from rnnlm.training import steps as steps_lib


def parse_variant(text: str) -> tuple[str, dict, dict]:
  """'name:field=value,field=value' -> (name, config overrides, impl choices)."""
  name, _, rest = text.partition(':')
  overrides, impl = {}, {}
  for item in filter(None, rest.split(',')):
    field, eq, value = item.partition('=')
    if not eq:
      raise UserError(f'variant {text!r}: write field=value (got {item!r})')
    try:
      value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      pass  # A bare string, e.g. lstm.
    if field.startswith('impl.'):
      impl[field[len('impl.'):]] = value
    else:
      overrides[field] = value
  if set(impl) - {'dropout', 'stack'} or impl.get('dropout', 'lanes') not in dropout_lib.IMPLEMENTATIONS:
    raise UserError(f'variant {text!r}: impl.dropout is lanes or bernoulli; impl.stack a count')
  if not isinstance(impl.get('stack', 1), int) or impl.get('stack', 1) < 1:
    raise UserError(f'variant {text!r}: impl.stack is a number of models, at least 1')
  return name or text, overrides, impl


@contextlib.contextmanager
def _dropout_impl(name: str):
  saved = dropout_lib.dropout
  dropout_lib.dropout = dropout_lib.IMPLEMENTATIONS[name]
  try:
    yield
  finally:
    dropout_lib.dropout = saved


def time_steps(base: ml_collections.ConfigDict, variants: list[str], *, rounds: int = 7,
               steps: int = 10) -> list[dict]:
  """Median seconds per training step of each variant (one device)."""
  parsed = [parse_variant(text) for text in variants]  # Bad ones fail before any work.
  mesh = parallel.make_mesh(jax.devices()[:1])
  runs = []
  for name, overrides, impl in parsed:
    config = config_lib.validate(sweep.apply_overrides(base, overrides))
    t = config.train
    splits = train.build_data(config)  # Batches of this variant's shape.
    k = impl.get('stack', 1)
    states = []
    for seed in range(k):
      _, graphdef, optimizer, state = steps_lib.create_train_state(
          sweep.apply_overrides(config, {'seed': config.seed + seed}),
          len(splits.vocab), len(splits.train), 1000, mesh)
      states.append(state)
    with _dropout_impl(impl.get('dropout', 'lanes')):  # Read while tracing.
      if k == 1:
        train_fn, _ = steps_lib.compile_steps(graphdef, optimizer, mesh)
      else:
        state = jax.tree.map(lambda *xs: jax.numpy.stack(xs), *states)
        train_fn = stacked_train_step(graphdef, optimizer, mesh)
      batch = steps_lib.device_batch(splits.train.window_at(0), mesh)
      state, m = train_fn(state, batch)
      jax.block_until_ready(m['loss'])
    runs.append({'name': name, 'overrides': overrides, 'impl': impl, 'fn': train_fn,
                 'state': state, 'batch': batch, 'chars': k * t.batch_size * t.seq_length,
                 'times': []})
  for _ in range(rounds):
    for r in runs:
      state = r['state']
      start = time.perf_counter()
      for _ in range(steps):
        state, m = r['fn'](state, r['batch'])
      jax.block_until_ready(m['loss'])
      r['times'].append((time.perf_counter() - start) / steps)
      r['state'] = state
  first = statistics.median(runs[0]['times'])
  out = []
  for r in runs:
    sec = statistics.median(r['times'])
    out.append({'name': r['name'], 'overrides': r['overrides'], 'impl': r['impl'],
                'ms_per_step': round(1000 * sec, 2), 'chars_per_sec': round(r['chars'] / sec),
                'vs_first': round(sec / first, 3), 'round_ms': [round(1000 * x, 2) for x in r['times']]})
  return out


def stacked_train_step(graphdef, optimizer, mesh):
  """The jitted train step of several same-shape models at once: `steps.train_step`
  vmapped over a stacked train state (leading axis: the model), one batch for all."""
  def one(state, batch):
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
      s = dict(state, rng=jax.random.wrap_key_data(state['rng']))
      new, metrics = steps_lib.train_step(s, batch, graphdef=graphdef, optimizer=optimizer)
      return dict(new, rng=state['rng']), metrics

  return jax.jit(jax.vmap(one, in_axes=(0, None)), donate_argnums=0)
