"""Compiled CPU kernels, called through the XLA FFI.

`rnnlm/model/csrc/recurrent_cpu.cc` holds fused LSTM, GRU and RNN recurrences (forward
and backward over a whole sequence) and the weight-gradient contractions
sum_k a_k^T b_k over all T*B rows (`dense`, and dW_h inside the recurrences'
backward passes). It is compiled on first use with the machine's C++
compiler (`$CXX`, else `c++`) for this CPU (`-march=native`) into a cache
directory (`$RNNLM_CACHE`, else `~/.cache/rnnlm`), keyed by the source, the
flags, the jaxlib version and the CPU, and then registered with XLA. Nothing to
do at install time: `pip install` ships the source.

The build is logged (start, seconds, instruction set) and given
`BUILD_TIMEOUT_S`; `instruction_set()` says what the library was built for
('avx512', 'avx2' or 'scalar': the vector width of its hot loops, or plain C++ loops).
`$RNNLM_KERNEL_FLAGS` adds compiler flags (for example `-mno-avx512f` for an AVX2 build
on an AVX-512 machine, or `-mno-avx512f -mno-avx2 -mno-fma` for the scalar one; the
tests build and check both). `amx()` says
whether the LSTM kernels can also run with bfloat16 matmuls on AMX tiles
(`lstm_recurrence_bf16`, used for `model.compute_dtype=bfloat16`).

Where it cannot be used (no compiler, a build error, `RNNLM_KERNELS=0`),
`unavailable_reason()` says why, logged once; `rnnlm.model.recurrence` then runs the
`lax.scan` path of `rnnlm.model.cells`, which computes the same values.
`RNNLM_KERNEL_THREADS` caps the threads a kernel call uses (default: all cores).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile
import threading
import time

from absl import logging
import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from rnnlm.model import cells

_SOURCE = pathlib.Path(__file__).with_name('csrc') / 'recurrent_cpu.cc'
_FLAGS = ('-O3', '-march=native', '-std=c++17', '-shared', '-fPIC', '-fno-math-errno',
          '-pthread')
BUILD_TIMEOUT_S = 600
_TARGETS = {'rnnlm_lstm_forward': 'RnnlmLstmForward',
            'rnnlm_lstm_backward': 'RnnlmLstmBackward',
            'rnnlm_gru_forward': 'RnnlmGruForward',
            'rnnlm_gru_backward': 'RnnlmGruBackward',
            'rnnlm_rnn_forward': 'RnnlmRnnForward',
            'rnnlm_rnn_backward': 'RnnlmRnnBackward',
            'rnnlm_lstm_forward_tokens': 'RnnlmLstmForwardTokens',
            'rnnlm_gru_forward_tokens': 'RnnlmGruForwardTokens',
            'rnnlm_rnn_forward_tokens': 'RnnlmRnnForwardTokens',
            'rnnlm_scatter_rows': 'RnnlmScatterRows',
            'rnnlm_matmul_tn': 'RnnlmMatmulTN',
            'rnnlm_weight_grad': 'RnnlmWeightGrad'}
_lock = threading.Lock()
_state: dict = {}


def _cpu_signature() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('flags'):
          return line
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _cache_dir() -> pathlib.Path:
  root = os.environ.get('RNNLM_CACHE') or os.path.join(
      os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'rnnlm')
  return pathlib.Path(root)


def _flags() -> tuple[str, ...]:
  return _FLAGS + tuple(os.environ.get('RNNLM_KERNEL_FLAGS', '').split())


def _build(compiler: str) -> pathlib.Path:
  """Compiles the kernel library (once per source/flags/CPU) and returns its path."""
  flags = _flags()
  key = hashlib.sha256()
  for part in (_SOURCE.read_bytes(), ' '.join(flags).encode(), compiler.encode(),
               jaxlib.__version__.encode(), _cpu_signature().encode()):
    key.update(part)
  out = _cache_dir() / f'rnnlm_kernels-{key.hexdigest()[:16]}.so'
  if out.exists():
    return out
  out.parent.mkdir(parents=True, exist_ok=True)
  # Build to a private name, then rename: concurrent processes never load a
  # half-written library.
  with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
    tmp_out = pathlib.Path(tmp) / out.name
    cmd = [compiler, *flags, f'-I{jax.ffi.include_dir()}', str(_SOURCE), '-o', str(tmp_out)]
    logging.info('Building the rnnlm CPU kernels (once per machine): %s', out)
    start = time.perf_counter()
    try:
      proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
      raise RuntimeError(f'{compiler} took over {BUILD_TIMEOUT_S} s') from None
    if proc.returncode != 0:
      raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stderr[-2000:]}')
    os.replace(tmp_out, out)
  logging.info('Built the rnnlm CPU kernels in %.1f s', time.perf_counter() - start)
  return out


def _load() -> str | None:
  """Builds and registers the kernels; returns None on success, else the reason."""
  if os.environ.get('RNNLM_KERNELS', '1') == '0':
    return 'RNNLM_KERNELS=0'
  compiler = os.environ.get('CXX') or shutil.which('c++') or shutil.which('g++')
  if not compiler:
    return 'no C++ compiler found (set $CXX)'
  try:
    lib = ctypes.cdll.LoadLibrary(str(_build(compiler)))
    for target, symbol in _TARGETS.items():
      jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, symbol)),
                                  platform='cpu')
  except (OSError, RuntimeError, AttributeError) as e:
    return f'building the CPU kernels failed: {e}'
  lib.RnnlmInstructionSet.restype = ctypes.c_char_p
  _state['lib'] = lib  # Keeps the library loaded.
  _state['isa'] = lib.RnnlmInstructionSet().decode()
  _state['amx'] = bool(lib.RnnlmAmx())
  logging.info('rnnlm CPU kernels loaded (%s build)', _state['isa'])
  return None


def unavailable_reason() -> str | None:
  """None when the compiled CPU kernels can be used, else why not."""
  with _lock:
    if 'reason' not in _state:
      _state['reason'] = _load()
      if _state['reason']:
        logging.warning('rnnlm CPU kernels off (%s); using the lax.scan recurrence.',
                        _state['reason'])
    return _state['reason']


def available() -> bool:
  return unavailable_reason() is None


def instruction_set() -> str | None:
  """'avx512', 'avx2' or 'scalar': what the loaded library was built for (None if
  it is not available)."""
  return _state.get('isa') if available() else None



def loaded_instruction_set() -> str | None:
  """instruction_set() if this process has loaded the library, else None (never builds
  or loads it)."""
  return _state.get('isa')


def amx() -> bool:
  """Whether the kernels can run bfloat16 matmuls on AMX tiles here (Intel Sapphire
  Rapids or later, a kernel built for it, and the OS granting the tile state)."""
  return bool(_state.get('amx')) if available() else False


def dense_supported(in_dim: int, out_dim: int, dtype) -> bool:
  """Whether `dense` can take x [..., in_dim] @ w [in_dim, out_dim] here."""
  return (jax.default_backend() == 'cpu' and jnp.dtype(dtype) == jnp.float32
          and (out_dim % 16 == 0 or in_dim % 16 == 0) and available())


def _matmul_tn(a, b):
  """a^T b for a [K, M], b [K, N] with N % 16 == 0, in the kernel."""
  return _ffi('rnnlm_matmul_tn', jax.ShapeDtypeStruct((a.shape[1], b.shape[1]), a.dtype))(a, b)


@jax.custom_vjp
def dense(x, w):
  """x @ w for x [..., D], w [D, N]: XLA's matmul, with the weight gradient
  x^T g (a contraction over all leading axes, which XLA's dot runs at 55-75% of
  its usual rate at these sizes) in the kernel. Check `dense_supported` first."""
  return x @ w


def _dense_fwd(x, w):
  return x @ w, (x, w)


def _dense_bwd(residuals, g):
  x, w = residuals
  x2 = x.reshape(-1, x.shape[-1])
  g2 = g.reshape(-1, g.shape[-1])
  if g.shape[-1] % 16 == 0:
    d_w = _matmul_tn(x2, g2)
  else:  # (g^T x)^T: the kernel needs its second operand 16-aligned.
    d_w = _matmul_tn(g2, x2).T
  return g @ w.T, d_w


dense.defvjp(_dense_fwd, _dense_bwd)


# ----------------------------------------------------------------------------
# The LSTM recurrence with a custom VJP whose forward and backward sequential
# loops are kernel calls, as are dW_h and db (one pass); the gradient of the
# layer's input goes on to the projection's matmul in XLA (or to the table's
# scatter-add for a first layer fed token ids).


def _ffi(target: str, results):
  # Under vmap the kernel runs once per mapped element: always correct (rnnlm
  # itself never vmaps a recurrence).
  return jax.ffi.ffi_call(target, results, vmap_method='sequential')


def _weight_grad(h0, hs, d_pre, bf16: bool = False):
  """(dW_h, d_sum): dW_h = sum_t h_{t-1}^T d_pre_t (h_{-1} = h0) and d_sum = d_pre
  summed over steps and batch (a bias gradient), in one pass in the kernel."""
  g = d_pre.shape[-1]
  return _ffi('rnnlm_weight_grad', (jax.ShapeDtypeStruct((hs.shape[-1], g), d_pre.dtype),
                                    jax.ShapeDtypeStruct((g,), d_pre.dtype)))(
                                        h0, hs, d_pre, bf16=np.bool_(bf16))


# A layer's projected inputs `x` are either xp = x W_x [T, B, G] or, for a first
# layer fed token ids, a pair (table [V, G], tokens [T, B] int32) standing for
# xp = table[tokens] (ids clipped to [0, V)): the forward kernels then read the
# table's rows in place, and the gradient of the table is a scatter-add.


def _forward(target: str, x, *args, results, **attrs):
  """Calls the forward kernel over xp or (table, tokens); `results` from (T, B, G)."""
  if isinstance(x, tuple):
    table, tokens = x
    t, bsz = tokens.shape
    return _ffi(target + '_tokens', results(t, bsz, table.shape[1], table.dtype))(
        table, tokens.astype(jnp.int32), *args, **attrs)
  t, bsz, g = x.shape
  return _ffi(target, results(t, bsz, g, x.dtype))(x, *args, **attrs)


def _input_grad(x, d_xp):
  """The cotangent of `x` given that of xp."""
  if isinstance(x, tuple):
    table, tokens = x
    d_table = _ffi('rnnlm_scatter_rows', jax.ShapeDtypeStruct(table.shape, d_xp.dtype))(
        tokens.astype(jnp.int32), d_xp)
    return d_table, None  # Integer ids: no cotangent.
  return d_xp


def _lstm_results(t, bsz, g, dtype):
  out = jax.ShapeDtypeStruct((t, bsz, g // cells.CELLS['lstm'].num_gates), dtype)
  return out, out, jax.ShapeDtypeStruct((t, bsz, g), dtype)


def _lstm(bf16: bool):
  """The LSTM recurrence with float32 or (bf16, AMX) bfloat16 recurrent matmuls."""
  attrs = {'bf16': np.bool_(bf16)}

  @jax.custom_vjp
  def rec(w_h, b, x, carry):
    hs, cs, _ = _forward('rnnlm_lstm_forward', x, w_h, b, *carry, results=_lstm_results,
                         **attrs)
    return hs, (hs[-1], cs[-1])

  def fwd(w_h, b, x, carry):
    hs, cs, gates = _forward('rnnlm_lstm_forward', x, w_h, b, *carry, results=_lstm_results,
                             **attrs)
    return (hs, (hs[-1], cs[-1])), (w_h, x, hs, cs, gates, carry)

  def bwd(residuals, cotangents):
    w_h, x, hs, cs, gates, (h0, c0) = residuals
    d_hs, (d_h_last, d_c_last) = cotangents
    _, bsz, hidden = hs.shape
    dz_shape = jax.ShapeDtypeStruct(gates.shape, gates.dtype)
    carry_shape = jax.ShapeDtypeStruct((bsz, hidden), hs.dtype)
    dz, dh0, dc0 = _ffi('rnnlm_lstm_backward', (dz_shape, carry_shape, carry_shape))(
        d_hs, gates, cs, c0, w_h.T, d_h_last, d_c_last, **attrs)
    return (*_weight_grad(h0, hs, dz, bf16), _input_grad(x, dz), (dh0, dc0))

  rec.defvjp(fwd, bwd)
  return rec


# LSTM over x = xp = x W_x [T, B, 4H] (no bias), or (table, tokens) (above), from
# carry (h0, c0): (hs, (h_T, c_T)).
lstm_recurrence = _lstm(False)
lstm_recurrence_bf16 = _lstm(True)


# ----------------------------------------------------------------------------
# The GRU recurrence, the same way (PyTorch / cuDNN form, see `rnnlm.model.cells`).


def _gru_results(t, bsz, g, dtype):
  hidden = g // cells.CELLS['gru'].num_gates
  return (jax.ShapeDtypeStruct((t, bsz, hidden), dtype),
          jax.ShapeDtypeStruct((t, bsz, 4 * hidden), dtype))


@jax.custom_vjp
def gru_recurrence(w_h, b, b_hn, x, carry):
  """GRU over x = xp = x W_x [T, B, 3H] (no bias), or (table, tokens), from carry
  (h0,): (hs, (h_T,))."""
  hs, _ = _forward('rnnlm_gru_forward', x, w_h, b, b_hn, carry[0], results=_gru_results)
  return hs, (hs[-1],)


def _gru_fwd(w_h, b, b_hn, x, carry):
  hs, acts = _forward('rnnlm_gru_forward', x, w_h, b, b_hn, carry[0], results=_gru_results)
  return (hs, (hs[-1],)), (w_h, x, hs, acts, carry[0])


def _gru_bwd(residuals, cotangents):
  w_h, x, hs, acts, h0 = residuals
  d_hs, (d_h_last,) = cotangents
  t, bsz, hidden = hs.shape
  seq = jax.ShapeDtypeStruct((t, bsz, cells.CELLS['gru'].num_gates * hidden), hs.dtype)
  dxp, dhh, dh0 = _ffi('rnnlm_gru_backward', (
      seq, seq, jax.ShapeDtypeStruct((bsz, hidden), hs.dtype)))(
          d_hs, acts, hs, h0, w_h.T, d_h_last)
  d_w_h, d_hh_sum = _weight_grad(h0, hs, dhh)
  return (d_w_h, jnp.sum(dxp, axis=(0, 1)), d_hh_sum[2 * hidden:], _input_grad(x, dxp),
          (dh0,))


gru_recurrence.defvjp(_gru_fwd, _gru_bwd)


# ----------------------------------------------------------------------------
# The Elman RNN, h_t = tanh(x_t W_x + h_{t-1} W_h + b).


def _rnn_results(t, bsz, g, dtype):
  return jax.ShapeDtypeStruct((t, bsz, g), dtype)


@jax.custom_vjp
def rnn_recurrence(w_h, b, x, carry):
  """RNN over x = xp = x W_x [T, B, H] (no bias), or (table, tokens), from carry
  (h0,): (hs, (h_T,))."""
  hs = _forward('rnnlm_rnn_forward', x, w_h, b, carry[0], results=_rnn_results)
  return hs, (hs[-1],)


def _rnn_fwd(w_h, b, x, carry):
  out = rnn_recurrence(w_h, b, x, carry)
  return out, (w_h, x, out[0], carry[0])


def _rnn_bwd(residuals, cotangents):
  w_h, x, hs, h0 = residuals
  d_hs, (d_h_last,) = cotangents
  _, bsz, hidden = hs.shape
  dz, dh0 = _ffi('rnnlm_rnn_backward', (
      jax.ShapeDtypeStruct(hs.shape, hs.dtype), jax.ShapeDtypeStruct((bsz, hidden), hs.dtype)))(
          d_hs, hs, w_h.T, d_h_last)
  return (*_weight_grad(h0, hs, dz), _input_grad(x, dz), (dh0,))


rnn_recurrence.defvjp(_rnn_fwd, _rnn_bwd)


def recurrence(cell: str, params: cells.Params, x, carry: cells.Carry, bf16: bool = False
               ) -> tuple[jax.Array, cells.Carry]:
  """A layer's recurrence in the kernels: `cells.recurrence_fast`'s values.

  Args:
    cell: 'rnn', 'lstm' or 'gru'.
    params: the layer's parameters (W_x is not read: `x` is already projected).
    x: xp = x W_x [T, B, G*H] (no bias), or (table [V, G*H], tokens [T, B]).
    carry: the initial carry.
    bf16: the recurrent matmuls and the weight gradient with bfloat16 operands on AMX
      tiles (LSTM only; see `amx`); all else float32.
  """
  if bf16 and cell != 'lstm':
    raise ValueError(f'bfloat16 kernels run the lstm only, not {cell}')
  if cell == 'lstm':
    rec = lstm_recurrence_bf16 if bf16 else lstm_recurrence
    return rec(params['W_h'], params['b'], x, carry)
  if cell == 'gru':
    return gru_recurrence(params['W_h'], params['b'], params['b_hn'], x, carry)
  return rnn_recurrence(params['W_h'], params['b'], x, carry)
