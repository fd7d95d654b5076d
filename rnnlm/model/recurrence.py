"""How a recurrent layer runs: the one place that picks an implementation.

`model.recurrence` names it; every implementation computes the same values and
the same gradients (tests compare them against NumPy float64):

  * 'reference': autodiff of the plain `lax.scan` (`cells.recurrence`), the
    path the others are checked against;
  * 'scan': the same scan with a hand-written VJP (`cells.recurrence_fast`):
    dW_h as one matmul over all steps instead of one per step;
  * 'kernel': the compiled CPU kernels (`rnnlm.model.kernels`): forward and backward
    loops in C++, and the weight gradients of the projections and the head;
    an error where they cannot run. A hidden size that is not a multiple of 16
    runs padded to the next one (`_padded_layer`: the extra units stay exactly zero);
  * 'parallel': for the cells linear in their state (mingru, minlstm, lru), a
    `lax.associative_scan` over the window (`cells.PARALLEL`); for them 'scan'
    and 'reference' are the plain sequential `lax.scan`;
  * 'auto': 'kernel' where the kernels run and are faster than 'scan' (a CPU
    backend, float32, a library built with AVX-512 or AVX2), else
    'scan'; for the parallel cells 'parallel' on an accelerator and 'scan' on a
    CPU, where the sequential scan was measured 1.6x (lru) to 2.6x (mingru)
    faster per training step than the parallel one (docs/performance.md).

There is no cuDNN path: on an NVIDIA H200 (jax 0.11.2) an LSTM layer through
`jax.experimental.rnn.lstm` trained at half the speed of 'scan' (0.52x at hidden 128,
0.50x at 512), and jitted with traced inputs, as in training, its per-step outputs did
not match the NumPy loop (its final state did); docs/performance.md has the figures.

A layer's input is either dense activations [T, B, D], projected here by the
layer's W_x, or `Tokens`: ids and a table of already projected rows, which is
how the first layer reads characters (one-hot W_x, or the embedding folded into
W_x) without a gathered [T, B, G*H] copy.

Under a batch-sharded mesh the kernels run per device (`jax.shard_map`), each on
its own rows.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from rnnlm.model import cells
from rnnlm.model import kernels
from rnnlm.model.axes import DATA_AXIS
from rnnlm.errors import UserError

CHOICES = ('auto', 'kernel', 'parallel', 'scan', 'reference')


class Tokens(NamedTuple):
  """A layer input given as token ids [T, B] into a table [V, G*H] of projected
  rows: xp = table[ids] (ids clipped to [0, V))."""
  table: jax.Array
  ids: jax.Array


def check_choice(name: str) -> None:
  if name == 'cudnn':
    raise UserError('model.recurrence=cudnn is gone (slower than scan on a GPU, and wrong'
                    ' under jit: docs/performance.md); use model.recurrence=auto')
  if name not in CHOICES:
    raise UserError(f'unknown model.recurrence {name!r}; use one of {", ".join(CHOICES)}')


def kernel_unavailable_reason(cell: str, hidden: int, dtype=jnp.float32) -> str | None:
  """None when the CPU kernels can run this layer here, else why not."""
  if cell in cells.PARALLEL:
    return f'the kernels run rnn, lstm and gru (this is {cell}, a parallel scan)'
  reason = kernels.unavailable_reason()
  if reason:
    return reason
  if jax.default_backend() != 'cpu':
    return f'the kernels run on the CPU backend only (this is {jax.default_backend()})'
  if jnp.dtype(dtype) == jnp.bfloat16:
    if cell != 'lstm':
      return f'the bfloat16 kernels run the lstm only (this is {cell})'
    if not kernels.amx():
      return 'bfloat16 kernels need a CPU with AMX (Intel Sapphire Rapids or later)'
    if hidden % 32:
      return f'the bfloat16 kernels need model.hidden_size to be a multiple of 32 (got {hidden})'
  elif jnp.dtype(dtype) != jnp.float32:
    return f'the kernels run float32 or bfloat16 (got {jnp.dtype(dtype).name})'
  return None


def resolve(name: str, cell: str, hidden: int, dtype=jnp.float32) -> str:
  """The implementation `name` stands for here: 'kernel', 'parallel', 'scan' or
  'reference'.

  Raises:
    UserError: an unknown name, or 'kernel' where the kernels cannot run.
  """
  check_choice(name)
  if name == 'parallel' and cell not in cells.PARALLEL:
    raise UserError(f'model.recurrence=parallel runs the cells linear in their state'
                    f' ({", ".join(cells.PARALLEL)}), not {cell}; use model.recurrence=auto')
  if name == 'auto' and cell in cells.PARALLEL:
    return 'parallel' if jax.default_backend() != 'cpu' else 'scan'
  if name == 'auto':
    fast = (kernel_unavailable_reason(cell, hidden, dtype) is None
            and kernels.instruction_set() in ('avx512', 'avx2'))
    return 'kernel' if fast else 'scan'
  if name == 'kernel':
    reason = kernel_unavailable_reason(cell, hidden, dtype)
    if reason:
      raise UserError(f'model.recurrence=kernel cannot run here: {reason};'
                      ' use model.recurrence=auto or scan')
  return name


# Time-major activations [T, B, ...] and carries [B, H] are split over the batch.
_TIME_MAJOR, _BATCH = P(None, DATA_AXIS), P(DATA_AXIS)


def _per_device(fn, in_specs, out_specs):
  """`fn` run on each device's rows of the batch, when a mesh with a 'data' axis is
  in context (`steps.compile_steps` sets it). XLA cannot split a custom call by
  itself: without this it gathers the whole batch onto every device around each
  kernel. Parameters (spec P()) are replicated; shard_map sums their gradients."""
  mesh = jax.sharding.get_abstract_mesh()
  if (mesh.empty or DATA_AXIS not in mesh.axis_names or mesh.shape[DATA_AXIS] == 1
      or DATA_AXIS in mesh.manual_axes):
    return fn
  # The kernels' outputs carry no varying-axis types, so the check is off; the
  # gradients of the replicated inputs are still summed over the devices.
  return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)


def dense(impl: str, x: jax.Array, w: jax.Array) -> jax.Array:
  """x [T, B, D] @ w [D, N]; under 'kernel' the weight gradient is the kernel's."""
  if impl == 'kernel' and kernels.dense_supported(w.shape[0], w.shape[1], jnp.float32):
    run = _per_device(kernels.dense, (_TIME_MAJOR, P()), _TIME_MAJOR)
    if x.dtype == jnp.bfloat16 and w.dtype == jnp.bfloat16:
      # bfloat16 operands are exact in float32: the same products, summed in float32
      # by the kernel, where XLA's CPU bfloat16 dot is slower than its float32 one.
      return run(x.astype(jnp.float32), w.astype(jnp.float32)).astype(jnp.bfloat16)
    if x.dtype == jnp.float32:
      return run(x, w)
  return cells.matmul(x, w)


def layer(impl: str, cell: str, params: cells.Params, x: jax.Array | Tokens,
          carry: cells.Carry, unroll: int = 1) -> tuple[jax.Array, cells.Carry]:
  """One recurrent layer over a window.

  Args:
    impl: a `resolve`d implementation.
    cell: 'rnn', 'lstm' or 'gru'.
    params: the layer's parameters (`cells.init_params`).
    x: inputs [T, B, D] (projected here by params['W_x']), or `Tokens`.
    carry: the state before the window.
    unroll: `lax.scan` unroll factor of the scan paths.

  Returns:
    (hs [T, B, H], carry after the window).
  """
  steps = x.ids.shape[0] if isinstance(x, Tokens) else x.shape[0]
  if impl == 'kernel' and steps > 1 and params['W_h'].shape[0] % KERNEL_MULTIPLE:
    return _padded_layer(cell, params, x, carry)
  # Single steps (sampling) stay on XLA, whose matrix-vector product uses every
  # core; the kernels pay off over sequences.
  if impl == 'kernel' and steps > 1:
    # bfloat16 (model.compute_dtype): the kernels take float32 buffers and round the
    # recurrent matmuls' operands to bfloat16 themselves; the layer's output is
    # rounded to bfloat16 as every activation of that setting is.
    dtype = params['W_h'].dtype
    bf16 = dtype == jnp.bfloat16
    f32 = lambda tree: jax.tree.map(lambda a: a.astype(jnp.float32)
                                    if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)

    def run(params, x, carry):
      if bf16:
        params, x, carry = f32(params), f32(x), f32(carry)
      kx = tuple(x) if isinstance(x, Tokens) else dense(impl, x, params['W_x'])
      hs, carry = kernels.recurrence(cell, params, kx, tuple(carry), bf16=bf16)
      return jax.tree.map(lambda a: a.astype(dtype), (hs, carry))
    x_spec = Tokens(P(), _TIME_MAJOR) if isinstance(x, Tokens) else _TIME_MAJOR
    return _per_device(run, (P(), x_spec, _BATCH), (_TIME_MAJOR, _BATCH))(
        params, x, tuple(carry))
  if isinstance(x, Tokens):
    xp = cells.project_tokens({'W_x': x.table}, x.ids)
  else:
    xp = dense(impl, x, params['W_x'])
  if impl == 'reference' or (impl == 'scan' and cell in cells.PARALLEL):
    return cells.recurrence(cell, params, xp, carry, unroll)
  # 'scan' (the custom VJP) for rnn, lstm and gru; 'parallel' for the others.
  return cells.recurrence_fast(cell, params, xp, carry, unroll)


# The kernels' vector width in floats (AVX-512); hidden sizes are padded to it.
KERNEL_MULTIPLE = 16


def _pad_gates(a: jax.Array, hidden: int, padded: int) -> jax.Array:
  """[..., G*hidden] -> [..., G*padded]: each gate's block padded with zeros."""
  blocks = a.reshape(a.shape[:-1] + (a.shape[-1] // hidden, hidden))
  blocks = jnp.pad(blocks, [(0, 0)] * (blocks.ndim - 1) + [(0, padded - hidden)])
  return blocks.reshape(a.shape[:-1] + (blocks.shape[-2] * padded,))


def _padded_layer(cell: str, params: cells.Params, x: jax.Array | Tokens,
                  carry: cells.Carry) -> tuple[jax.Array, cells.Carry]:
  """A kernel layer whose hidden size H is not a multiple of 16, run at the next
  multiple Hp: every weight into and out of the Hp - H extra units, their biases and
  their carry are zero, so their gate inputs are zero, their state stays exactly 0
  (rnn: tanh(0); lstm: c = f c + i tanh(0), h = o tanh(c); gru: (1 - z) tanh(0) + z h)
  and the H real units compute what they would alone. The outputs are cut back to H;
  the gradients of the padding are dropped by the cut."""
  hidden = params['W_h'].shape[0]
  padded = -(-hidden // KERNEL_MULTIPLE) * KERNEL_MULTIPLE
  w_h_rows = jnp.pad(params['W_h'], ((0, padded - hidden), (0, 0)))
  pad = {'W_x': _pad_gates(params['W_x'], hidden, padded),
         'W_h': _pad_gates(w_h_rows, hidden, padded),
         'b': _pad_gates(params['b'], hidden, padded)}
  if 'b_hn' in params:
    pad['b_hn'] = jnp.pad(params['b_hn'], (0, padded - hidden))
  if isinstance(x, Tokens):
    x = Tokens(_pad_gates(x.table, hidden, padded), x.ids)
  carry = tuple(jnp.pad(c, ((0, 0), (0, padded - hidden))) for c in carry)
  hs, carry = layer('kernel', cell, pad, x, carry)
  return hs[..., :hidden], tuple(c[..., :hidden] for c in carry)


def from_legacy(fast_recurrence: bool | None, cpu_kernel: bool | None) -> str:
  """The `model.recurrence` that configs written before it meant by the two
  booleans `fast_recurrence` (default True) and `cpu_kernel` (default True)."""
  if fast_recurrence is False:
    return 'reference'
  return 'scan' if cpu_kernel is False else 'auto'
