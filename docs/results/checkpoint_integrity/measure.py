"""The cost of checkpoint integrity (rnnlm/training/integrity.py): writing a step's
manifest (size and SHA-256 of every file) after its save, and checking it before a
restore, against the Orbax save and restore of the same step.

  python docs/results/checkpoint_integrity/measure.py > docs/results/checkpoint_integrity/results.json
"""

import json
import os
import platform
import statistics
import sys
import tempfile
import time

import jax

from configs import shakespeare
from rnnlm.training import checkpoint, integrity, parallel, steps


def measure(hidden: int, repeats: int = 5) -> dict:
  config = shakespeare.get_config()
  config.model.hidden_size = hidden
  mesh = parallel.make_mesh()
  _, _, _, state = steps.create_train_state(config, 84, 100, 1000, mesh)
  out = {'hidden': hidden, 'parameters': int(sum(x.size for x in jax.tree.leaves(state['params'])))}
  times = {k: [] for k in ('save_s', 'manifest_s', 'verify_s', 'restore_s')}
  for r in range(repeats):
    with tempfile.TemporaryDirectory() as wd:
      ckpt = checkpoint.Checkpointer(wd)
      t = time.perf_counter()
      ckpt.manager.save(1, args=checkpoint.ocp.args.Composite(
          state=checkpoint.ocp.args.StandardSave(state),
          meta=checkpoint.ocp.args.JsonSave({'step': 1})), force=True)
      ckpt.manager.wait_until_finished()
      times['save_s'].append(time.perf_counter() - t)
      step_dir = ckpt.step_dir(1)
      t = time.perf_counter()
      integrity.write_manifest(step_dir)
      times['manifest_s'].append(time.perf_counter() - t)
      t = time.perf_counter()
      assert integrity.verify(step_dir) is None
      times['verify_s'].append(time.perf_counter() - t)
      t = time.perf_counter()
      ckpt.manager.restore(1, args=checkpoint.ocp.args.Composite(
          state=checkpoint.ocp.args.StandardRestore(
              jax.tree.map(checkpoint.ocp.utils.to_shape_dtype_struct, state))))
      times['restore_s'].append(time.perf_counter() - t)
      out['checkpoint_bytes'] = sum(os.path.getsize(os.path.join(root, f))
                                    for root, _, fs in os.walk(step_dir) for f in fs)
      ckpt.close()
  for k, v in times.items():
    out[k] = round(statistics.median(v), 4)
  out['manifest_vs_save'] = round(out['manifest_s'] / out['save_s'], 3)
  out['verify_vs_restore'] = round(out['verify_s'] / out['restore_s'], 3)
  return out


def cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      return next(l.split(':', 1)[1].strip() for l in f if l.startswith('model name'))
  except (OSError, StopIteration):
    return platform.machine()


if __name__ == '__main__':
  rows = [measure(h) for h in (256, 1024)]
  print(json.dumps({'machine': cpu_model(),
                    'cpus': os.cpu_count(), 'python': sys.version.split()[0],
                    'jax': jax.__version__, 'rows': rows}, indent=2))
