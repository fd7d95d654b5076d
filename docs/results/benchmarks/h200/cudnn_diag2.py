import sys; sys.path.insert(0, 'tests/model')
import jax, jax.numpy as jnp, numpy as np
from jax.experimental import rnn
import test_gpu as T
from rnnlm.model import recurrence
for (b, h, t) in [(5,16,13),(4,32,20)]:
  params, carry, x = T._problem('lstm', t=t, b=b, h=h)
  want, _ = T._numpy_loop('lstm', params, np.asarray(x @ params['W_x'], np.float64), carry)
  hh, cc = carry
  ys, _, _ = jax.jit(lambda: rnn.lstm(jnp.swapaxes(x, 0, 1), hh[None], cc[None], recurrence.cudnn_weights(params), jnp.full((b,), t, jnp.int32), input_size=x.shape[-1], hidden_size=h, num_layers=1, dropout=0.0, bidirectional=False))()
  print(b, h, t, ys.shape, 'swap', round(T._rel_err(jnp.swapaxes(ys, 0, 1), want), 5), 'reshape', round(T._rel_err(ys.reshape(t, b, h), want), 5), flush=True)
