"""Training-step time of rnnlm's transformer at two versions of rnnlm/transformer.py,
in one process, timed in interleaved rounds (random batches, Adam; the benchmark's
trainer). From the repository root:

  python docs/results/transformer_attention/before_after.py 17493fe

compares the version at that commit ('before') with the working tree ('after').
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

from rnnlm import benchmark, transformer
from rnnlm.benchmark import Shape


def main(commit: str):
  shown = subprocess.run(['git', 'show', f'{commit}:rnnlm/transformer.py'],
                         capture_output=True, text=True)
  if shown.returncode:
    sys.exit(f'no rnnlm/transformer.py at {commit!r}: give a commit of this repository, '
             'from its root')
  source = shown.stdout
  with tempfile.NamedTemporaryFile('w', suffix='.py', delete=False) as f:
    f.write(source)
  spec = importlib.util.spec_from_file_location('transformer_before', f.name)
  before = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(before)
  os.unlink(f.name)
  after = transformer.CharTransformer
  runs = {}
  for width in (96, 192):
    for mode in ('recompute', 'cached'):
      for name, cls in (('before', before.CharTransformer), ('after', after)):
        transformer.CharTransformer = cls  # What the benchmark's trainer builds.
        run = benchmark.rnnlm_transformer_trainer(Shape('transformer', width, 4, 50, 100, 65),
                                                  128, 4, mode)
        run(2)  # Compile and warm up.
        runs[(width, mode, name)] = run
  transformer.CharTransformer = after
  times = {key: [] for key in runs}
  for _ in range(5):
    for key, run in runs.items():
      start = time.perf_counter()
      run(5)
      times[key].append((time.perf_counter() - start) / 5)
  print(f'jax {jax.__version__}; 4 blocks, 4 heads, batch 50 x 100 after a context of 128')
  for (width, mode, name), t in times.items():
    ms = 1000 * float(np.median(t))
    print(f'width {width}, context {mode}, {name}: {ms:.1f} ms/step, {50 * 100 / ms * 1000:.0f} chars/s')


if __name__ == '__main__':
  if len(sys.argv) != 2:
    sys.exit('usage: python docs/results/transformer_attention/before_after.py COMMIT')
  main(sys.argv[1])
