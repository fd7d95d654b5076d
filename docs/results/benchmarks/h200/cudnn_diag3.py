import sys; sys.path.insert(0, 'tests/model')
import jax, jax.numpy as jnp, numpy as np
from jax.experimental import rnn
import test_gpu as T
from rnnlm.model import recurrence
b, h, t = 5, 16, 13
params, carry, x = T._problem('lstm', t=t, b=b, h=h)
want, _ = T._numpy_loop('lstm', params, np.asarray(x @ params['W_x'], np.float64), carry)
def raw(p, c, x):
  return rnn.lstm(jnp.swapaxes(x, 0, 1), c[0][None], c[1][None], recurrence.cudnn_weights(p), jnp.full((b,), t, jnp.int32), input_size=x.shape[-1], hidden_size=h, num_layers=1, dropout=0.0, bidirectional=False)[0]
fixes = {'swap_in_jit': lambda y: jnp.swapaxes(y, 0, 1),
         'barrier': lambda y: jnp.swapaxes(jax.lax.optimization_barrier(y), 0, 1),
         'copy': lambda y: jnp.swapaxes(jnp.copy(y), 0, 1)}
for name, f in fixes.items():
  try:
    ys = jax.jit(lambda p, c, x: f(raw(p, c, x)))(params, carry, x)
    print(name, round(T._rel_err(ys, want), 5), flush=True)
  except Exception as e:
    print(name, 'error', str(e)[:200], flush=True)
ys = jax.jit(raw)(params, carry, x)
print('swap_outside_jit_args', round(T._rel_err(jnp.swapaxes(ys, 0, 1), want), 5))
print(jax.jit(lambda p, c, x: jnp.swapaxes(raw(p, c, x), 0, 1)).lower(params, carry, x).compile().as_text()[:3000])
