"""The compiled CPU kernels (lstm, gru, rnn) against NumPy float64 and float64 autodiff."""

import functools
import os
import platform
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from np_reference import NP_STEPS
from rnnlm.model import cells
from rnnlm.model import kernels
from rnnlm.model import recurrence
from rnnlm.errors import UserError
from rnnlm.model import CharLM

needs_kernel = pytest.mark.skipif(not kernels.available(),
                                  reason=f'CPU kernels unavailable: {kernels.unavailable_reason()}')


def test_kernel_builds_where_a_compiler_exists():
  if not (os.environ.get('CXX') or shutil.which('c++') or shutil.which('g++')):
    pytest.skip('no C++ compiler on this machine')
  assert kernels.unavailable_reason() is None
  assert kernels.instruction_set() in ('avx512', 'avx2', 'scalar')
  assert recurrence.kernel_unavailable_reason('lstm', 32) is None
  assert recurrence.kernel_unavailable_reason('gru', 33) is None  # Run padded to 48.
  assert 'float32 or bfloat16' in recurrence.kernel_unavailable_reason('lstm', 32, jnp.float16)
  with pytest.raises(UserError, match='model.recurrence=kernel cannot run here: .*float32'):
    recurrence.resolve('kernel', 'gru', 32, jnp.float16)
  want = 'kernel' if kernels.instruction_set() in ('avx512', 'avx2') else 'scan'
  assert recurrence.resolve('auto', 'lstm', 32) == want
  assert recurrence.resolve('auto', 'gru', 33) == want


def _inputs(cell, t, b, h, zero_carry, seed=0):
  """Float64 (w_h, biases, xp, carry): biases is (b,) for lstm, (b, b_hn) for gru."""
  rng = np.random.default_rng(seed)
  g = cells.get_spec(cell).num_gates
  w_h = rng.normal(size=(h, g * h)) / np.sqrt(h)
  biases = (rng.normal(size=(g * h,)) * 0.5,)
  if cell == 'gru':
    biases += (rng.normal(size=(h,)) * 0.5,)
  xp = rng.normal(size=(t, b, g * h))
  n = cells.get_spec(cell).num_carry
  carry = tuple(np.zeros((b, h)) if zero_carry else rng.normal(size=(b, h)) * 0.7
                for _ in range(n))
  return w_h, biases, xp, carry


def _kernel(cell):
  fn = {'lstm': kernels.lstm_recurrence, 'gru': kernels.gru_recurrence,
        'rnn': kernels.rnn_recurrence}[cell]
  return lambda w_h, biases, xp, carry: fn(w_h, *biases, xp, carry)


def _reference(cell):
  def run(w_h, biases, xp, carry):
    p = {'W_h': w_h, 'b': biases[0]}
    if cell == 'gru':
      p['b_hn'] = biases[1]
    return cells.recurrence(cell, p, xp, carry)
  return run


f32 = lambda tree: jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), tree)

# Shapes: one step; a batch that does not split evenly over threads or row tiles;
# column counts that leave 1..3-vector remainders (G*H = 320, 240 or 80); the
# benchmark's shape.
SHAPES = [(1, 1, 16), (5, 3, 16), (9, 13, 48), (3, 7, 80), (4, 50, 128)]


def _numpy_forward(cell, w_h, biases, xp, carry):
  """(hs [T, B, H], final carry) step by step in float64. The NumPy step takes
  x W_x; with W_x = I (G*H wide input) that is xp itself."""
  p = {'W_x': np.eye(xp.shape[-1]), 'W_h': w_h, 'b': biases[0]}
  if cell == 'gru':
    p['b_hn'] = biases[1]
  state, hs = carry, []
  for x in xp:
    state = NP_STEPS[cell](p, x, *state)
    hs.append(state[0])
  return np.stack(hs), state


@needs_kernel
@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
@pytest.mark.parametrize('t,b,h', SHAPES)
@pytest.mark.parametrize('zero_carry', [True, False])
def test_forward_matches_numpy_float64(cell, t, b, h, zero_carry):
  w_h, biases, xp, carry = _inputs(cell, t, b, h, zero_carry)
  want, state = _numpy_forward(cell, w_h, biases, xp, carry)
  hs, final = jax.jit(_kernel(cell))(*f32((w_h, biases, xp, carry)))
  np.testing.assert_allclose(hs, want, rtol=1e-5, atol=2e-6)
  for got, w in zip(final, state):
    np.testing.assert_allclose(got, w, rtol=1e-5, atol=2e-6)


@needs_kernel
@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
def test_forward_matches_numpy_float64_in_saturation(cell):
  # Pre-activations of every size from 1e-3 to 200, both signs: the vector exp
  # clamps its argument and scales by 2^n near n = +-126, sigmoid and tanh
  # saturate, and tanh switches to its series below |x| = 1/8.
  t, b, h = 3, 5, 32
  w_h, biases, _, carry = _inputs(cell, t, b, h, zero_carry=False, seed=3)
  rng = np.random.default_rng(4)
  g = cells.get_spec(cell).num_gates
  xp = rng.choice([-1.0, 1.0], size=(t, b, g * h)) * 10.0 ** rng.uniform(-3, 2.3, (t, b, g * h))
  want, _ = _numpy_forward(cell, w_h, biases, xp, carry)
  hs, _ = jax.jit(_kernel(cell))(*f32((w_h, biases, xp, carry)))
  assert np.all(np.isfinite(hs))
  np.testing.assert_allclose(hs, want, rtol=1e-5, atol=2e-6)


@needs_kernel
@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
@pytest.mark.parametrize('t,b,h', SHAPES)
@pytest.mark.parametrize('zero_carry', [True, False])
def test_gradients_match_float64_autodiff(cell, t, b, h, zero_carry):
  args = _inputs(cell, t, b, h, zero_carry, seed=1)
  rng = np.random.default_rng(2)
  proj = rng.normal(size=(t, b, h))
  proj_c = rng.normal(size=(b, h))

  def loss(run, *args):
    hs, final = run(*args)
    return (jnp.sum(hs * proj) + jnp.sum(jnp.sin(final[0]))
            + sum(jnp.sum(c * proj_c) for c in final[1:]))

  with jax.enable_x64(True):
    want = jax.grad(functools.partial(loss, _reference(cell)), argnums=(0, 1, 2, 3))(*args)
    want = jax.tree.map(np.asarray, want)
  got = jax.jit(jax.grad(functools.partial(loss, _kernel(cell)), argnums=(0, 1, 2, 3)))(
      *f32(args))
  assert len(jax.tree.leaves(got)) == len(jax.tree.leaves(want))
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert g.dtype == jnp.float32
    # Relative to the gradient's scale: float32 sums in another order.
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * np.max(np.abs(w)))


@needs_kernel
@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
@pytest.mark.parametrize('t,b,h', [(5, 3, 16), (9, 13, 48), (4, 50, 128)])
def test_token_inputs_match_float64(cell, t, b, h):
  """A first layer fed token ids: rows of a table read in place, and the table's
  gradient by scatter-add, against xp = table[ids] in float64 (ids clipped to
  [0, V), as `jnp.take(..., mode='clip')` does; two ids are out of range)."""
  w_h, biases, xp, carry = _inputs(cell, t, b, h, zero_carry=False, seed=8)
  rng = np.random.default_rng(9)
  vocab = 11
  table = rng.normal(size=(vocab, xp.shape[-1]))
  tokens = rng.integers(0, vocab, (t, b)).astype(np.int32)
  tokens[0, 0], tokens[-1, -1] = -3, vocab + 4
  gathered = table[np.clip(tokens, 0, vocab - 1)]
  proj = rng.normal(size=(t, b, h))

  def loss(run, w_h, biases, x, carry):
    hs, final = run(w_h, biases, x, carry)
    return jnp.sum(hs * proj) + sum(jnp.sum(jnp.sin(c)) for c in final)

  with jax.enable_x64(True):
    ref = _reference(cell)
    take = lambda table: jnp.take(table, jnp.asarray(tokens), axis=0, mode='clip')
    want_hs = np.asarray(ref(w_h, biases, gathered, carry)[0])
    want = jax.grad(lambda w_h, biases, table, carry: loss(ref, w_h, biases, take(table),
                                                           carry), argnums=(0, 1, 2, 3))(
        w_h, biases, table, carry)
  run = _kernel(cell)
  w_h32, biases32, table32, carry32 = f32((w_h, biases, table, carry))
  ids = jnp.asarray(tokens)
  hs, _ = jax.jit(lambda *a: run(a[0], a[1], (a[2], ids), a[3]))(w_h32, biases32, table32,
                                                                 carry32)
  np.testing.assert_allclose(hs, want_hs, rtol=1e-5, atol=2e-6)
  got = jax.jit(jax.grad(lambda w_h, biases, table, carry: loss(run, w_h, biases, (table, ids),
                                                                carry), argnums=(0, 1, 2, 3)))(
      w_h32, biases32, table32, carry32)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * np.max(np.abs(w)))


@needs_kernel
@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
def test_result_does_not_depend_on_thread_count(cell, monkeypatch):
  args = f32(_inputs(cell, 6, 25, 32, zero_carry=False, seed=3))
  run = _kernel(cell)
  grad = jax.grad(lambda *a: jnp.sum(run(*a)[0] ** 2), argnums=(0, 1, 2, 3))
  outs = []
  for threads in ('1', '3'):
    monkeypatch.setenv('RNNLM_KERNEL_THREADS', threads)
    outs.append(jax.tree.map(np.asarray, (run(*args), grad(*args))))
  for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
    np.testing.assert_array_equal(a, b)


@needs_kernel
@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
def test_model_uses_kernel_and_matches_scan_path(cell):
  tokens = jnp.asarray(np.random.default_rng(4).integers(0, 20, (6, 9)))
  outs = []
  for kernel in (True, False):
    model = CharLM(20, cell=cell, hidden_size=32, num_layers=2, rngs=nnx.Rngs(0),
                   recurrence='kernel' if kernel else 'scan')
    carry = jax.tree.map(lambda a: a + 0.2, model.initial_carry(6))
    hlo = jax.jit(lambda t, c: model(t, c)).lower(tokens, carry).as_text()
    assert (f'rnnlm_{cell}_forward' in hlo) == kernel
    outs.append(model(tokens, carry))
  for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@needs_kernel
@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
def test_hidden_sizes_off_the_vector_width_run_padded_and_match_the_scan(cell):
  # 37 units run as 48 in the kernels: the loss and every parameter's gradient must be
  # those of the 37-unit scan, from one-hot and dense (second layer) inputs alike.
  tokens = jnp.asarray(np.random.default_rng(6).integers(0, 20, (5, 8)))
  results = []
  for impl in ('kernel', 'scan'):
    model = CharLM(20, cell=cell, hidden_size=37, num_layers=2, rngs=nnx.Rngs(1),
                   recurrence=impl)
    carry = jax.tree.map(lambda a: a + 0.3, model.initial_carry(5))
    graph, params = nnx.split(model)

    def loss(params, carry):
      logits, new_carry = nnx.merge(graph, params)(tokens, carry)
      logp = jax.nn.log_softmax(logits)
      return (-jnp.take_along_axis(logp[:, :-1], tokens[:, 1:, None], -1).mean()
              + 0.1 * sum(jnp.sum(c ** 2) for c in jax.tree.leaves(new_carry)))
    hlo = jax.jit(jax.grad(loss)).lower(params, carry).as_text()
    assert (f'rnnlm_{cell}_forward' in hlo) == (impl == 'kernel')
    results.append(jax.value_and_grad(loss, argnums=(0, 1))(params, carry))
  (lk, gk), (ls, gs) = results
  np.testing.assert_allclose(lk, ls, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(gk), jax.tree.leaves(gs)):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# (leading shape of x, D, N): K = prod(leading) rows in the contraction. Row
# counts of 1..6 per tile and column chunks of 1..4 vectors; K over one panel
# (1100 > 512 at D = 128); N = 65 takes the transposed (g^T x)^T route.
DENSE_SHAPES = [((1,), 1, 16), ((37,), 7, 48), ((4, 50), 128, 512), ((1100,), 128, 64),
                ((3, 5), 32, 65), ((2, 3), 20, 112)]


@needs_kernel
@pytest.mark.parametrize('lead,d,n', DENSE_SHAPES)
def test_dense_and_its_gradients_match_numpy_float64(lead, d, n):
  rng = np.random.default_rng(5)
  x, w = rng.normal(size=(*lead, d)), rng.normal(size=(d, n))
  r = rng.normal(size=(*lead, n))  # The cotangent: loss = sum(r * (x @ w)).
  assert kernels.dense_supported(d, n, jnp.float32)
  y, (dx, dw) = jax.jit(jax.value_and_grad(
      lambda x, w: jnp.sum(jnp.asarray(r, jnp.float32) * kernels.dense(x, w)),
      argnums=(0, 1)))(*f32((x, w)))
  x2, r2 = x.reshape(-1, d), r.reshape(-1, n)
  np.testing.assert_allclose(y, np.sum(r2 * (x2 @ w)), rtol=1e-5)
  np.testing.assert_allclose(dx, r @ w.T, rtol=1e-5, atol=1e-5 * np.max(np.abs(r @ w.T)))
  want_dw = x2.T @ r2  # Independent of the kernel: NumPy float64.
  np.testing.assert_allclose(dw, want_dw, rtol=1e-5, atol=1e-5 * np.max(np.abs(want_dw)))


@needs_kernel
def test_dense_gradient_does_not_depend_on_thread_count(monkeypatch):
  rng = np.random.default_rng(6)
  x, w = f32((rng.normal(size=(300, 24)), rng.normal(size=(24, 160))))
  grad = jax.grad(lambda x, w: jnp.sum(jnp.sin(kernels.dense(x, w))), argnums=1)
  outs = []
  for threads in ('1', '3'):
    monkeypatch.setenv('RNNLM_KERNEL_THREADS', threads)
    outs.append(np.asarray(grad(x, w)))
  np.testing.assert_array_equal(outs[0], outs[1])


@needs_kernel
def test_model_gradient_takes_weight_gradients_in_kernel_iff_enabled():
  tokens = jnp.asarray(np.random.default_rng(7).integers(0, 20, (6, 9)))
  grads = []
  for kernel in (True, False):
    model = CharLM(20, cell='lstm', hidden_size=32, num_layers=2, rngs=nnx.Rngs(0),
                   recurrence='kernel' if kernel else 'scan')
    graphdef, params = nnx.split(model)
    carry = model.initial_carry(6)

    def loss(params):
      logits, _ = nnx.merge(graphdef, params)(tokens, carry)
      return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - logits[..., 0])
    hlo = jax.jit(jax.grad(loss)).lower(params).as_text()
    # dW_h of both layers, dW_x of layer 1 and the head's weight gradient.
    assert ('rnnlm_weight_grad' in hlo) == kernel
    assert ('rnnlm_matmul_tn' in hlo) == kernel
    grads.append(jax.grad(loss)(params))
  for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_disabled_by_environment_falls_back_with_reason():
  code = ('from rnnlm.model import kernels, recurrence;'
          'print(kernels.unavailable_reason()); print(recurrence.resolve("auto", "lstm", 32))')
  env = dict(os.environ, RNNLM_KERNELS='0', JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                       check=True).stdout.split()
  assert out == ['RNNLM_KERNELS=0', 'scan']


def test_embedding_is_folded_into_first_projection_exactly():
  v, e, h = 9, 5, 16
  model = CharLM(v, cell='gru', hidden_size=h, num_layers=1, embed_dim=e, rngs=nnx.Rngs(2))
  tokens = jnp.asarray(np.random.default_rng(5).integers(0, v, (3, 4)))  # 12 >= V: folded.
  logits, _ = model(tokens, model.initial_carry(3))
  # Unfolded by hand: embed, project, recur, head.
  w = model.layers[0].weights()
  xp = cells.project_inputs(w, model.embed(tokens.T))
  hs, _ = cells.recurrence('gru', w, xp, model.initial_carry(3)[0])
  want = jnp.swapaxes(model.head(hs), 0, 1)
  np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc',
                    reason='retain_freed_memory tunes glibc malloc; this is not glibc')
def test_retain_freed_memory_stops_page_faults_on_reuse():
  # In a fresh process: a 64 MB block freed and allocated again faults its pages
  # in anew by default (glibc mmap/munmap), and not after retain_freed_memory().
  code = '''
import ctypes, resource, sys
from rnnlm.training import hostmem
if sys.argv[1] == '1':
  assert hostmem.retain_freed_memory()
libc = ctypes.CDLL('libc.so.6')
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 64 << 20
def touch():
  p = libc.malloc(size)
  ctypes.memset(p, 1, size)
  libc.free(p)
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
  touch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''
  counts = []
  for retain in ('0', '1'):
    out = subprocess.run([sys.executable, '-c', code, retain], capture_output=True, text=True,
                         check=True).stdout
    counts.append(int(out.split()[-1]))
  pages = 3 * (64 << 20) // 4096
  assert counts[0] > pages // 2   # Fresh pages every time.
  assert counts[1] < pages // 20  # Reused.


def test_failed_build_falls_back_with_reason(tmp_path):
  # A compiler that always fails: the reason names the build, and the model still runs
  # (on the scan path) with the same numbers.
  code = ('from rnnlm.model import kernels, recurrence;'
          'r = kernels.unavailable_reason(); print(r.split(":")[0]);'
          'print(recurrence.resolve("auto", "lstm", 32))')
  env = dict(os.environ, CXX='false', RNNLM_CACHE=str(tmp_path), JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                       check=True).stdout.splitlines()
  assert out == ['building the CPU kernels failed', 'scan']
  assert not list(tmp_path.glob('*.so'))


def test_benchmark_flop_counts_by_hand():
  from rnnlm.bench import benchmark as bm
  # LSTM, H=128, 2 layers, V=65: per layer and char 2 * 256 * 512 = 262,144 FLOPs,
  # head 2 * 128 * 65 = 16,640; x3 for forward + backward.
  model = 3 * (2 * 262_144 + 16_640)
  assert bm.train_flops_per_char('lstm', 128, 2, 65) == model
  # rnnlm folds the embedding: the first layer's input half (2 * 128 * 512 = 131,072)
  # is replaced by a [65, 128] x [128, 512] product per 5,000-char step.
  shape = bm.Shape('lstm', 128)
  want = model - 3 * 131_072 + 3 * 131_072 * 65 / 5000
  assert bm.rnnlm_flops_per_char(shape) == pytest.approx(want)
  # No fold when the vocabulary exceeds the characters of a step.
  big = bm.Shape('gru', 64, batch=2, seq_length=3, vocab=65)
  assert bm.rnnlm_flops_per_char(big) == bm.train_flops_per_char('gru', 64, 2, 65)
  # Transformer, d=192, 4 blocks, V=65, 128 keys per query: per block and character
  # 12 * 192^2 = 442,368 multiply-adds in the dense layers and 2 * 192 * 128 = 49,152
  # for scores and values; the head 192 * 65 = 12,480; 2 FLOPs each, x3.
  want = 6 * (4 * (442_368 + 49_152) + 12_480)
  assert bm.transformer_flops_per_char(192, 4, 65, 128) == want


@pytest.mark.skipif(bool(os.environ.get('RNNLM_KERNEL_FLAGS')), reason='already the inner run')
@needs_kernel
@pytest.mark.parametrize('flags,want_isa', [('-mno-avx512f', 'avx2'),
                                            ('-mno-avx512f -mno-avx2 -mno-fma', 'scalar')])
@pytest.mark.slow
def test_narrower_builds_pass_the_kernel_tests(tmp_path, flags, want_isa):
  # The same source built for a narrower instruction set runs loops the default
  # build never executes (AVX2 intrinsics on an AVX-512 machine; the plain C++
  # loops left to the compiler anywhere): the reference tests run again against
  # that build, in a fresh process.
  if kernels.instruction_set() == want_isa:
    pytest.skip(f'the default build is already {want_isa}')
  env = dict(os.environ, RNNLM_KERNEL_FLAGS=flags, RNNLM_CACHE=str(tmp_path),
             JAX_PLATFORMS='cpu')
  code = ('from rnnlm.model import kernels; assert kernels.available(), kernels.unavailable_reason();'
          'print(kernels.instruction_set())')
  isa = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                       check=True).stdout.split()[-1]
  if want_isa == 'avx2' and isa == 'scalar':
    pytest.skip('this CPU has no AVX2')
  assert isa == want_isa
  proc = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-x', '-p', 'no:cacheprovider',
       os.path.abspath(__file__), '-k',
       'forward_matches_numpy or gradients_match_float64 or token_inputs or dense_and_its'
       ' or model_uses_kernel'],
      env=env, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(
          os.path.dirname(os.path.abspath(__file__)))))
  assert proc.returncode == 0, proc.stdout[-3000:]
  assert ' passed' in proc.stdout and 'skipped' not in proc.stdout.splitlines()[-1]
