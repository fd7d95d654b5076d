"""Training and sampling speed of rnnlm against PyTorch and Flax's nnx.RNN, in one run.

  pip install -e '.[bench]'   # adds torch==2.13.0 (CPU)
  python experiments/benchmark.py --json_out=bench.json

Prints a markdown table (chars/s, ratio to PyTorch, achieved GFLOP/s and share of
the machine's matmul rate measured in the same run) and writes every number to
--json_out. The logic is in rnnlm/bench/benchmark.py.
"""

import functools
import json
import os
import sys

from absl import app, flags

from rnnlm.bench import benchmark as bm
from rnnlm.training import hostmem
from rnnlm.errors import UserError, report_user_errors

_CELLS = flags.DEFINE_list('cells', ['lstm', 'gru', 'rnn'], 'Cells to measure.')
_HIDDEN = flags.DEFINE_list('hidden', ['128', '512'], 'Hidden sizes.')
_LAYERS = flags.DEFINE_integer('num_layers', 2, 'Recurrent layers.')
_BATCH = flags.DEFINE_integer('batch', 50, 'Batch size.')
_SEQ = flags.DEFINE_integer('seq_length', 100, 'Window length.')
_VOCAB = flags.DEFINE_integer('vocab', 65, 'Vocabulary size.')
_STEPS = flags.DEFINE_integer('steps', 5, 'Training steps per timed round.')
_REPEATS = flags.DEFINE_integer('repeats', 9, 'Timed rounds (median reported).')
_SAMPLE_LENGTH = flags.DEFINE_integer('sample_length', 300, 'Characters per sampling run (0: skip).')
_SAMPLE_HIDDEN = flags.DEFINE_integer('sample_hidden', 512, 'Hidden size for the sampling rows.')
_REFERENCE = flags.DEFINE_bool('reference', True, "Also time rnnlm's autodiff reference path.")
_SCAN = flags.DEFINE_bool('scan', True, "Where rnnlm uses its compiled CPU kernel, also time"
                          " its custom-VJP lax.scan path.")
_RECURRENCE = flags.DEFINE_enum('recurrence', 'auto', ['auto', 'kernel', 'scan', 'reference'],
                                'model.recurrence of the "rnnlm" rows.')
_TORCH = flags.DEFINE_bool('torch', True, 'Include PyTorch (if installed).')
_FLAX = flags.DEFINE_bool('flax', True, "Include Flax's nnx.RNN.")
_RETAIN_MEMORY = flags.DEFINE_bool(
    'retain_host_memory', True,
    'Keep freed host memory for reuse (rnnlm/training/hostmem.py), as experiments/train.py does;'
    ' process-wide, so PyTorch and Flax run with it too.')
_MATMUL_SIZE = flags.DEFINE_integer(
    'matmul_size', 2048, 'n of the [n, n] x [n, n] float32 matmul whose rate is the'
    ' reference for "of matmul rate"; timed in the same interleaved rounds as each'
    " shape's rows.")
_TRANSFORMER_HIDDEN = flags.DEFINE_list(
    'transformer_hidden', [], 'Widths at which to also time rnnlm\'s transformer (context'
    ' recomputed and cached) against the nanoGPT-style PyTorch one (empty: skip).')
_TRANSFORMER_LAYERS = flags.DEFINE_integer('transformer_layers', 4, 'Transformer blocks.')
_TRANSFORMER_HEADS = flags.DEFINE_integer('transformer_heads', 4, 'Attention heads.')
_CONTEXT = flags.DEFINE_integer('context_length', 128, "The transformers' context: rnnlm"
                                " carries it before each window; PyTorch trains on windows"
                                " of it.")
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write all numbers here as JSON.')


_MATMUL = 'float32 matmul (same rounds)'


def _check_flags() -> list[int]:
  """Validates the flags before any timing; returns the hidden sizes."""
  bad = sorted(set(_CELLS.value) - {'lstm', 'gru', 'rnn'})
  if bad or not _CELLS.value:
    raise UserError(f'--cells must list some of lstm, gru, rnn (got {",".join(_CELLS.value)})')
  try:
    hidden = [int(h) for h in _HIDDEN.value]
  except ValueError:
    hidden = []
  if not hidden or min(hidden) < 1:
    raise UserError(f'--hidden must list positive integers (got {",".join(_HIDDEN.value)})')
  try:
    widths = [int(h) for h in _TRANSFORMER_HIDDEN.value]
  except ValueError:
    widths = [0]
  if any(w < 1 or w % _TRANSFORMER_HEADS.value for w in widths):
    raise UserError('--transformer_hidden must list positive multiples of'
                    f' --transformer_heads={_TRANSFORMER_HEADS.value}'
                    f' (got {",".join(_TRANSFORMER_HIDDEN.value)})')
  for flag in (_LAYERS, _BATCH, _SEQ, _STEPS, _REPEATS, _SAMPLE_HIDDEN, _MATMUL_SIZE,
               _TRANSFORMER_LAYERS, _TRANSFORMER_HEADS, _CONTEXT):
    if flag.value < 1:
      raise UserError(f'--{flag.name} must be at least 1 (got {flag.value})')
  if _VOCAB.value < 2:
    raise UserError(f'--vocab must be at least 2 (got {_VOCAB.value})')
  if _SAMPLE_LENGTH.value < 0:
    raise UserError(f'--sample_length must be 0 (skip) or more (got {_SAMPLE_LENGTH.value})')
  if _JSON_OUT.value:
    # Checked now rather than after the whole run.
    out_dir = os.path.dirname(os.path.abspath(_JSON_OUT.value))
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK):
      raise UserError(f'--json_out: cannot write in {out_dir}; create it or pick another path')
  return hidden


def _time_transformers(results: dict, use_torch: bool, n: int) -> None:
  """rnnlm's transformer, context recomputed and cached, against the PyTorch one."""
  layers, heads, c, t = (_TRANSFORMER_LAYERS.value, _TRANSFORMER_HEADS.value, _CONTEXT.value,
                         _SEQ.value)
  print(f'\nTransformers, {layers} blocks, {heads} heads, context {c}: rnnlm reads windows of'
        f' {t} after a carried context of {c}; PyTorch trains on windows of {c} (nanoGPT).'
        ' chars/s counts predicted characters; GFLOP/s the model\'s work per predicted'
        ' character (not what recomputing the context adds).\n')
  print('| hidden | implementation | chars/s | vs torch | GFLOP/s | of matmul rate | warm-up s |')
  print('|---|---|---|---|---|---|---|')
  results['transformer'] = []
  for d in (int(h) for h in _TRANSFORMER_HIDDEN.value):
    shape = bm.Shape('transformer', d, layers, _BATCH.value, t, _VOCAB.value)
    trainers = {f'rnnlm, context {mode}': functools.partial(
        bm.rnnlm_transformer_trainer, shape, c, heads, mode) for mode in ('recompute', 'cached')}
    flops = {name: bm.transformer_flops_per_char(d, layers, _VOCAB.value, c) for name in trainers}
    chars = {}
    if use_torch:
      trainers['torch nanoGPT-style'] = lambda: bm.torch_transformer_trainer(shape, c, heads)
      flops['torch nanoGPT-style'] = bm.transformer_flops_per_char(d, layers, _VOCAB.value,
                                                                   (c + 1) / 2)
      chars['torch nanoGPT-style'] = _BATCH.value * c
    trainers[_MATMUL] = lambda: bm.matmul_runner(n)
    res = bm.measure_training(trainers, shape, _STEPS.value, _REPEATS.value, flops, chars)
    rate = bm.matmul_rate(res.pop(_MATMUL)['times_s'], _STEPS.value, n)
    torch_cps = res.get('torch nanoGPT-style', {}).get('chars_per_sec')
    for name, r in res.items():
      ratio = f"{r['chars_per_sec'] / torch_cps:.2f}x" if torch_cps else '-'
      print(f"| {d} | {name} | {r['chars_per_sec']:.0f} | {ratio} | {r['gflops']:.1f} |"
            f" {100 * r['gflops'] / rate:.0f}% | {r['warmup_s']:.1f} |", flush=True)
      results['transformer'].append(dict(r, hidden=d, layers=layers, heads=heads, context=c,
                                         implementation=name, matmul_gflops=rate,
                                         vs_torch=r['chars_per_sec'] / torch_cps if torch_cps
                                         else None))


@report_user_errors
def main(argv):
  del argv
  hidden_sizes = _check_flags()
  use_torch = _TORCH.value and bm.torch_available()
  if _TORCH.value and not use_torch:
    sys.stderr.write("note: torch not installed; pip install -e '.[bench]' for its rows\n")
  info = bm.machine_info()
  info['retain_host_memory'] = _RETAIN_MEMORY.value and hostmem.retain_freed_memory()
  n = _MATMUL_SIZE.value
  peak = bm.matmul_gflops(n)
  results = {'machine': info, 'matmul_gflops': peak, 'matmul_size': n, 'training': [],
             'sampling': []}
  print(f"Machine: {info.get('cpu_model', info['processor'])}, {info['cpu_count']} cores" +
        (f", {info['gpu']} (torch on {info.get('torch_device', '-')})" if 'gpu' in info else '') +
        ';'
        f" jax {info['jax']}, flax {info['flax']}" +
        (f", torch {info['torch']}" if use_torch else '') +
        f"; rnnlm kernels: {info['rnnlm_kernels']}, rnnlm rows: recurrence={_RECURRENCE.value}"
        f"; freed host memory retained: {info['retain_host_memory']}"
        f"\nfloat32 matmul rate (jnp.dot {n}^3) at the start: {peak:.0f} GFLOP/s;"
        f" each shape's rows are compared with the same matmul timed in their rounds\n")
  print('| cell | hidden | implementation | chars/s | vs torch | GFLOP/s | of matmul rate | warm-up s |')
  print('|---|---|---|---|---|---|---|---|')
  for hidden in hidden_sizes:
    for cell in _CELLS.value:
      shape = bm.Shape(cell, hidden, _LAYERS.value, _BATCH.value, _SEQ.value, _VOCAB.value)
      trainers = {'rnnlm': lambda: bm.rnnlm_trainer(shape, _RECURRENCE.value)}
      if _SCAN.value and bm.uses_cpu_kernel(shape, _RECURRENCE.value):
        trainers['rnnlm (custom-VJP scan)'] = lambda: bm.rnnlm_trainer(shape, 'scan')
      if _REFERENCE.value:
        trainers['rnnlm (autodiff scan)'] = lambda: bm.rnnlm_trainer(shape, 'reference')
      if _FLAX.value:
        trainers['flax nnx.RNN'] = lambda: bm.flax_trainer(shape)
      if use_torch:
        trainers['torch nn.' + {'lstm': 'LSTM', 'gru': 'GRU', 'rnn': 'RNN'}[cell]] = (
            lambda: bm.torch_trainer(shape))
      trainers[_MATMUL] = lambda: bm.matmul_runner(n)
      rnnlm_flops = bm.rnnlm_flops_per_char(shape)
      res = bm.measure_training(trainers, shape, _STEPS.value, _REPEATS.value,
                                {k: rnnlm_flops for k in trainers if k.startswith('rnnlm')})
      mm = res.pop(_MATMUL)
      rate = bm.matmul_rate(mm['times_s'], _STEPS.value, n)
      results['matmul_interleaved'] = results.get('matmul_interleaved', []) + [
          {'cell': cell, 'hidden': hidden, 'gflops': rate, 'times_s': mm['times_s']}]
      torch_cps = next((r['chars_per_sec'] for n, r in res.items() if n.startswith('torch')), None)
      for name, r in res.items():
        ratio = f"{r['chars_per_sec'] / torch_cps:.2f}x" if torch_cps else '-'
        print(f"| {cell} | {hidden} | {name} | {r['chars_per_sec']:.0f} | {ratio} |"
              f" {r['gflops']:.1f} | {100 * r['gflops'] / rate:.0f}% | {r['warmup_s']:.1f} |",
              flush=True)
        results['training'].append(dict(r, cell=cell, hidden=hidden, implementation=name,
                                        flops_per_char=r['gflops'] * 1e9 / r['chars_per_sec'],
                                        vs_torch=(r['chars_per_sec'] / torch_cps
                                                  if torch_cps else None),
                                        of_matmul_rate=r['gflops'] / rate))
      print(f"| {cell} | {hidden} | {_MATMUL} | - | - | {rate:.1f} | 100% | - |", flush=True)
  print('\nGFLOP/s counts the matmul work each row performs: the model\'s (formula in'
        ' rnnlm/bench/benchmark.py) for Flax and PyTorch; for rnnlm, less the first layer\'s'
        ' per-character input projection, which it replaces by a lookup in the product of'
        ' the embedding and W_x. "of matmul rate" is that over the float32 matmul row of'
        ' the same shape, timed in the same interleaved rounds.')
  if _TRANSFORMER_HIDDEN.value:
    _time_transformers(results, use_torch, n)
  if _SAMPLE_LENGTH.value > 0:
    print(f'\nSampling, lstm, hidden {_SAMPLE_HIDDEN.value}, {_LAYERS.value} layers,'
          f' {_SAMPLE_LENGTH.value} chars per stream:\n')
    print('| streams | implementation | chars/s | vs torch |')
    print('|---|---|---|---|')
    shape = bm.Shape('lstm', _SAMPLE_HIDDEN.value, _LAYERS.value, vocab=_VOCAB.value)
    for streams in (1, 64):
      samplers = {'rnnlm (jitted lax.scan)': bm.rnnlm_sampler(shape, streams, _SAMPLE_LENGTH.value)}
      if use_torch:
        samplers['torch per-char loop'] = bm.torch_sampler(shape, streams, _SAMPLE_LENGTH.value)
      res = bm.measure_sampling(samplers, streams, _SAMPLE_LENGTH.value, _REPEATS.value)
      torch_cps = res.get('torch per-char loop', {}).get('chars_per_sec')
      for name, r in res.items():
        ratio = f"{r['chars_per_sec'] / torch_cps:.1f}x" if torch_cps else '-'
        print(f"| {streams} | {name} | {r['chars_per_sec']:.0f} | {ratio} |", flush=True)
        results['sampling'].append(dict(r, streams=streams, implementation=name))
  if _JSON_OUT.value:
    with open(_JSON_OUT.value, 'w') as f:
      json.dump(results, f, indent=2)


if __name__ == '__main__':
  app.run(main)
