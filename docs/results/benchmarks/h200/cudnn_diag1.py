import sys; sys.path.insert(0, 'tests/model')
import jax, jax.numpy as jnp, numpy as np
import test_gpu as T
from rnnlm.model import recurrence, cells
for (b, h, zero, t) in [(5,16,False,13),(5,16,True,13),(4,16,False,13),(5,32,False,13),(4,32,True,20),(5,16,False,1),(5,16,False,2)]:
  params, carry, x = T._problem('lstm', t=t, b=b, h=h)
  if zero: carry = tuple(jnp.zeros_like(c) for c in carry)
  hs, (hn, cn) = jax.jit(lambda p, c: recurrence._cudnn_layer(p, x, c))(params, carry)
  want, (wh, wc) = T._numpy_loop('lstm', params, np.asarray(x @ params['W_x'], np.float64), carry)
  per_t = [round(T._rel_err(hs[i], want[i]), 4) for i in range(t)]
  print(b, h, 'zero' if zero else 'rand', t, 'hs', round(T._rel_err(hs, want),4), 'h', round(T._rel_err(hn, wh),4), 'c', round(T._rel_err(cn, wc),4), per_t[:6], flush=True)
