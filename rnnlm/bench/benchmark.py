"""Side-by-side speed measurements: rnnlm against PyTorch and Flax's own RNN layer.

Each implementation trains the same model (embedding of width H, `num_layers`
recurrent layers of H, a linear softmax head, Adam with global-norm clipping 5,
state carried between windows) on the same random tokens. Implementations are
interleaved round by round after a warm-up (compile time is measured separately),
and the median of the rounds is reported. PyTorch is optional (`pip install -e
'.[bench]'`); its rows are skipped without it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from rnnlm.model import cells
from rnnlm.model import kernels
from rnnlm.model import recurrence
from rnnlm.training import sample as sample_lib
from rnnlm.model import CharLM


def train_flops_per_char(cell: str, hidden: int, num_layers: int, vocab: int) -> float:
  """Matmul FLOPs per character of one training step (forward + backward).

  Per layer and character, the input and recurrent matmuls take 2 * (2H) * (G*H)
  FLOPs (G gates; the layer input has width H because the embedding does), the
  softmax head 2 * H * V. The backward pass costs twice the forward: 3x in all.
  This is the work of the model as PyTorch and Flax run it.
  """
  g = cells.get_spec(cell).num_gates
  return 3.0 * (num_layers * 2 * (2 * hidden) * (g * hidden) + 2 * hidden * vocab)


def rnnlm_flops_per_char(shape: 'Shape') -> float:
  """The matmul FLOPs rnnlm actually executes per character, for its share of the rate.

  rnnlm folds the embedding into the first layer's input projection (a lookup in
  the [V, G*H] product of the two, see `CharLM`): that layer's per-character
  input matmul is replaced by one [V, H] x [H, G*H] product per step.
  """
  g = cells.get_spec(shape.cell).num_gates
  chars = shape.batch * shape.seq_length
  full = train_flops_per_char(shape.cell, shape.hidden, shape.num_layers, shape.vocab)
  if shape.vocab > chars:
    return full
  return full - 3.0 * 2 * shape.hidden * g * shape.hidden * (1 - shape.vocab / chars)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
  """The machine's float32 matmul rate through jnp.dot, in GFLOP/s (median)."""
  a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
  dot = jax.jit(jnp.dot)
  dot(a, a).block_until_ready()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    dot(a, a).block_until_ready()
    times.append(time.perf_counter() - t0)
  return 2 * n ** 3 / statistics.median(times) / 1e9


def matmul_runner(n: int = 2048) -> Callable[[int], None]:
  """run(k) computes k float32 [n, n] x [n, n] products through jnp.dot: the
  machine's matmul rate, timed in the same interleaved rounds as the trainers
  (`measure_training`) so that it sees the same load. Rate: `matmul_rate`."""
  a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
  dot = jax.jit(jnp.dot)

  def run(k):
    out = None
    for _ in range(k):
      out = dot(a, a)
    jax.block_until_ready(out)
  return run


def matmul_rate(times_s: list[float], products: int, n: int = 2048) -> float:
  """GFLOP/s of `matmul_runner(n)` rounds of `products` products each (median)."""
  return 2 * n ** 3 * products / statistics.median(times_s) / 1e9


@dataclasses.dataclass
class Shape:
  cell: str
  hidden: int
  num_layers: int = 2
  batch: int = 50
  seq_length: int = 100
  vocab: int = 65


def uses_cpu_kernel(shape: Shape, impl: str = 'auto') -> bool:
  """Whether `model.recurrence=impl` runs this shape through rnnlm's CPU kernels."""
  return recurrence.resolve(impl, shape.cell, shape.hidden) == 'kernel'


# ----------------------------------------------------------------------------
# Trainers: each returns (run_steps(n) -> None that blocks until done).


def _random_batches(shape: Shape, n: int = 4, seed: int = 0) -> list[np.ndarray]:
  rng = np.random.default_rng(seed)
  return [rng.integers(0, shape.vocab, (shape.batch, shape.seq_length + 1)).astype(np.int32)
          for _ in range(n)]


def _jax_trainer(shape: Shape, forward: Callable, params, carry) -> Callable[[int], None]:
  """A jitted Adam+clip step around `forward(params, tokens, carry) -> (logits, carry)`."""
  opt = optax.chain(optax.clip_by_global_norm(5.0), optax.adam(2e-3))

  @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
  def step(params, opt_state, carry, batch):
    def loss_fn(params):
      logits, new_carry = forward(params, batch[:, :-1], carry)
      ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:])
      return ce.mean(), new_carry
    (loss, new_carry), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, jax.lax.stop_gradient(new_carry), loss

  batches = [jnp.asarray(b) for b in _random_batches(shape)]
  state = [params, opt.init(params), carry]

  def run(n):
    loss = None
    for i in range(n):
      state[0], state[1], state[2], loss = step(*state, batches[i % len(batches)])
    jax.block_until_ready(loss)
  return run


def rnnlm_trainer(shape: Shape, impl: str = 'auto', unroll: int = 1):
  """rnnlm's model with `model.recurrence=impl` (see `rnnlm.model.recurrence`)."""
  model = CharLM(shape.vocab, cell=shape.cell, hidden_size=shape.hidden,
                 num_layers=shape.num_layers, embed_dim=shape.hidden, unroll=unroll,
                 recurrence=impl, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)

  def forward(params, tokens, carry):
    return nnx.merge(graphdef, params)(tokens, carry)
  return _jax_trainer(shape, forward, params, model.initial_carry(shape.batch))


def rnnlm_transformer_trainer(shape: Shape, context: int, heads: int, context_states: str):
  """rnnlm's transformer (`model.arch='transformer'`, rotary positions): `shape.num_layers`
  blocks of width `shape.hidden`, windows of `shape.seq_length` read after a carried
  context of `context` characters."""
  from rnnlm.model.transformer import CharTransformer
  model = CharTransformer(shape.vocab, hidden_size=shape.hidden, num_layers=shape.num_layers,
                          num_heads=heads, context_length=context, positions='rotary',
                          context_states=context_states, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)

  def forward(params, tokens, carry):
    return nnx.merge(graphdef, params)(tokens, carry)
  return _jax_trainer(shape, forward, params, model.initial_carry(shape.batch))


def torch_transformer_trainer(shape: Shape, context: int, heads: int):
  """The nanoGPT-style PyTorch transformer (`rnnlm.bench.peers`) as nanoGPT trains it: windows
  of `context` characters with no context before them, Adam with clipping."""
  import torch
  from rnnlm.bench import peers
  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  model = peers.build_transformer(shape.vocab, shape.hidden, shape.num_layers, heads, context,
                                  0.0).to(torch_device())
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  rng = np.random.default_rng(0)
  batches = [torch.from_numpy(rng.integers(0, shape.vocab, (shape.batch, context + 1)))
             .to(torch_device()) for _ in range(4)]

  def run(n):
    for i in range(n):
      b = batches[i % len(batches)]
      loss = _torch_update(model, opt, model(b[:, :-1])[0], b[:, 1:])
    loss.detach().item()
  return run


def transformer_flops_per_char(d: int, layers: int, vocab: int, attended: float) -> float:
  """Training matmul FLOPs per predicted character, the model's work only (not what
  recomputing a context adds): per block 12 d^2 (q, k, v, projection, 4x MLP) and 4 d
  per key attended to (scores and values), `attended` keys; the head. Forward +
  backward = 3 x forward."""
  return 3 * 2 * (layers * (12 * d * d + 2 * d * attended) + d * vocab)


class _FlaxRNNLM(nnx.Module):
  """The same model built from Flax's own `nnx.RNN` and its built-in cells."""

  def __init__(self, shape: Shape, rngs: nnx.Rngs):
    cell_cls = {'lstm': nnx.OptimizedLSTMCell, 'gru': nnx.GRUCell, 'rnn': nnx.SimpleCell}
    self.embed = nnx.Embed(shape.vocab, shape.hidden, rngs=rngs)
    self.layers = nnx.List([
        nnx.RNN(cell_cls[shape.cell](shape.hidden, shape.hidden, rngs=rngs), return_carry=True)
        for _ in range(shape.num_layers)])
    self.head = nnx.Linear(shape.hidden, shape.vocab, rngs=rngs)

  def __call__(self, tokens, carry):
    x = self.embed(tokens)
    new = []
    for layer, c in zip(self.layers, carry):
      c, x = layer(x, initial_carry=c)
      new.append(c)
    return self.head(x), tuple(new)


def flax_trainer(shape: Shape):
  model = _FlaxRNNLM(shape, nnx.Rngs(0))
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)  # rest: the RNN's RNG state.
  zeros = lambda: jnp.zeros((shape.batch, shape.hidden), jnp.float32)  # Distinct buffers.
  carry = tuple((zeros(), zeros()) if shape.cell == 'lstm' else zeros()
                for _ in range(shape.num_layers))

  def forward(params, tokens, carry):
    return nnx.merge(graphdef, params, rest)(tokens, carry)
  return _jax_trainer(shape, forward, params, carry)


def torch_available() -> bool:
  try:
    import torch  # noqa: F401
    return True
  except ImportError:
    return False


def torch_device() -> str:
  """Where the PyTorch peers run: the GPU when JAX runs on one too (and this torch is
  a CUDA build), else the CPU, so that both sides of a row share the device."""
  import torch
  return 'cuda' if jax.default_backend() == 'gpu' and torch.cuda.is_available() else 'cpu'


def _torch_model(shape: Shape):
  import torch
  rnn_cls = {'lstm': torch.nn.LSTM, 'gru': torch.nn.GRU, 'rnn': torch.nn.RNN}[shape.cell]

  class TorchLM(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.embed = torch.nn.Embedding(shape.vocab, shape.hidden)
      self.rnn = rnn_cls(shape.hidden, shape.hidden, num_layers=shape.num_layers,
                         batch_first=True)
      self.head = torch.nn.Linear(shape.hidden, shape.vocab)

    def forward(self, tokens, state):
      out, state = self.rnn(self.embed(tokens), state)
      return self.head(out), state
  return TorchLM()


def _torch_zero_state(shape: Shape, batch: int):
  import torch
  h = torch.zeros(shape.num_layers, batch, shape.hidden, device=torch_device())
  return (h, torch.zeros_like(h)) if shape.cell == 'lstm' else h


def _torch_detach(state):
  return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def _torch_update(model, opt, logits, targets):
  """Cross-entropy, backward, global-norm clip 5 and one optimizer step; the loss."""
  import torch
  loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           targets.reshape(-1))
  opt.zero_grad(set_to_none=True)
  loss.backward()
  torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
  opt.step()
  return loss


def torch_trainer(shape: Shape):
  import torch
  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  model = _torch_model(shape).to(torch_device())
  opt = torch.optim.Adam(model.parameters(), lr=2e-3)
  batches = [torch.from_numpy(b.astype(np.int64)).to(torch_device())
             for b in _random_batches(shape)]
  state = [_torch_zero_state(shape, shape.batch)]

  def run(n):
    for i in range(n):
      b = batches[i % len(batches)]
      logits, new_state = model(b[:, :-1], state[0])
      loss = _torch_update(model, opt, logits, b[:, 1:])
      state[0] = _torch_detach(new_state)
    loss.detach().item()
  return run


def measure_training(trainers: dict[str, Callable[[], Callable[[int], None]]], shape: Shape,
                     steps: int, repeats: int,
                     flops_per_char: dict[str, float] | None = None,
                     chars_per_step: dict[str, int] | None = None) -> dict[str, dict]:
  """Builds, warms up and times each trainer, interleaved; chars/s is the median.

  GFLOP/s uses `flops_per_char[name]` where given (the work that trainer really
  does), else the model's `train_flops_per_char`. A step trains `chars_per_step[name]`
  characters where given, else batch x seq_length.
  """
  runs, compile_s = {}, {}
  for name, make in trainers.items():
    t0 = time.perf_counter()
    runs[name] = make()
    runs[name](2)  # Compile / warm up: not part of any timing.
    compile_s[name] = time.perf_counter() - t0
  times = {name: [] for name in runs}
  for _ in range(repeats):
    for name, run in runs.items():
      t0 = time.perf_counter()
      run(steps)
      times[name].append(time.perf_counter() - t0)
  model_flops = (train_flops_per_char(shape.cell, shape.hidden, shape.num_layers, shape.vocab)
                 if shape.cell in ('lstm', 'gru', 'rnn') else 0.0)
  out = {}
  for name, ts in times.items():
    chars = steps * (chars_per_step or {}).get(name, shape.batch * shape.seq_length)
    cps = chars / statistics.median(ts)
    flops = (flops_per_char or {}).get(name, model_flops)
    out[name] = {'chars_per_sec': cps, 'gflops': cps * flops / 1e9,
                 'warmup_s': compile_s[name], 'times_s': ts}
  return out


# ----------------------------------------------------------------------------
# Sampling


def rnnlm_sampler(shape: Shape, num_streams: int, length: int) -> Callable[[], None]:
  model = CharLM(shape.vocab, cell=shape.cell, hidden_size=shape.hidden,
                 num_layers=shape.num_layers, embed_dim=shape.hidden, rngs=nnx.Rngs(0))
  prime = np.array([1], np.int32)

  def run():
    sample_lib.generate_ids(model, prime, length=length, num_samples=num_streams, seed=0)
  return run


def torch_sampler(shape: Shape, num_streams: int, length: int) -> Callable[[], None]:
  """The usual PyTorch sampling loop: one forward call per character."""
  import torch
  torch.set_num_threads(os.cpu_count() or 1)
  model = _torch_model(shape).to(torch_device()).eval()

  def run():
    with torch.no_grad():
      state = _torch_zero_state(shape, num_streams)
      token = torch.ones(num_streams, 1, dtype=torch.long, device=torch_device())
      for _ in range(length):
        logits, state = model(token, state)
        probs = torch.softmax(logits[:, -1], dim=-1)
        token = torch.multinomial(probs, 1)
      token.cpu()  # Waits for the device.
  return run


def measure_sampling(samplers: dict[str, Callable[[], None]], num_streams: int, length: int,
                     repeats: int) -> dict[str, dict]:
  for run in samplers.values():
    run()  # Warm up / compile.
  times = {name: [] for name in samplers}
  for _ in range(repeats):
    for name, run in samplers.items():
      t0 = time.perf_counter()
      run()
      times[name].append(time.perf_counter() - t0)
  return {name: {'chars_per_sec': num_streams * length / statistics.median(ts), 'times_s': ts}
          for name, ts in times.items()}


def machine_info() -> dict:
  import flax
  info = {'platform': platform.platform(), 'processor': platform.processor(),
          'cpu_count': os.cpu_count(), 'python': platform.python_version(),
          'jax': jax.__version__, 'flax': flax.__version__, 'optax': optax.__version__,
          'jax_devices': [str(d) for d in jax.devices()],
          'rnnlm_kernels': kernels.instruction_set() or kernels.unavailable_reason()}
  try:
    with open('/proc/cpuinfo') as f:
      names = [l.split(':', 1)[1].strip() for l in f if l.startswith('model name')]
    if names:
      info['cpu_model'] = names[0]
  except OSError:
    pass
  if torch_available():
    import torch
    info['torch'] = torch.__version__
    info['torch_device'] = torch_device()
  if jax.default_backend() == 'gpu':
    info['gpu'] = jax.devices()[0].device_kind
  return info
