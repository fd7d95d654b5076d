"""Real training processes stopped by signals: SIGTERM saves and resumes bit-exactly;
SIGKILL at any moment leaves a workdir that resumes to the same result."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from flax import nnx

from rnnlm.training import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _start(workdir, *extra):
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='')
  return subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'experiments', 'train.py'), '--config=configs/tiny.py',
       f'--workdir={workdir}', *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=300):
  out, err = proc.communicate(timeout=timeout)
  return proc.returncode, err


def _wait_for_metrics(workdir, lines, proc, timeout=120):
  path = os.path.join(workdir, 'metrics.jsonl')
  deadline = time.time() + timeout
  while time.time() < deadline:
    if os.path.exists(path) and len(open(path).read().splitlines()) >= lines:
      return
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    time.sleep(0.05)
  raise AssertionError('the run wrote no metrics in time')


def _params(workdir):
  model, _, step = checkpoint.load_model(workdir, 'latest')
  return step, jax.tree.leaves(jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model,
                                                                                  nnx.Param))))


def _val_losses(workdir):
  return [(r['step'], r['val_loss'])
          for r in map(json.loads, open(os.path.join(workdir, 'metrics.jsonl')))]


def _assert_same_run(a, b):
  step_a, params_a = _params(a)
  step_b, params_b = _params(b)
  assert step_a == step_b
  for x, y in zip(params_a, params_b):
    np.testing.assert_array_equal(x, y)  # Bit for bit.
  assert _val_losses(a) == _val_losses(b)
  results = [json.load(open(os.path.join(d, 'results.json'))) for d in (a, b)]
  for key in ('best_step', 'best_val_loss', 'test_loss', 'final_step'):
    assert results[0][key] == results[1][key], key


ARGS = ('--config.train.num_steps=1500', '--config.eval.eval_every=100',
        '--config.model.dropout=0.1')


def test_sigterm_saves_the_current_step_and_resume_is_exact(tmp_path):
  straight, stopped = str(tmp_path / 'straight'), str(tmp_path / 'stopped')
  proc = _start(stopped, *ARGS)
  _wait_for_metrics(stopped, 2, proc)
  proc.send_signal(signal.SIGTERM)
  code, err = _finish(proc)
  assert code == 128 + signal.SIGTERM, err[-3000:]
  [line] = [l for l in err.splitlines() if l.startswith('SIGTERM: stopped at step')]
  step = int(re.search(r'step (\d+)', line).group(1))
  assert 200 <= step < 1500
  assert checkpoint.Checkpointer(stopped).latest_step() == step
  code, err = _finish(_start(stopped, *ARGS))
  assert code == 0, err[-3000:]
  code, err = _finish(_start(straight, *ARGS))
  assert code == 0, err[-3000:]
  _assert_same_run(straight, stopped)


def _metric_lines(workdir):
  path = os.path.join(workdir, 'metrics.jsonl')
  return len(open(path).read().splitlines()) if os.path.exists(path) else 0


def test_sigkill_at_random_moments_never_breaks_resume(tmp_path):
  straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
  args = ('--config.train.num_steps=3000', *ARGS[1:])
  rng = random.Random(0)
  moments = []
  for _ in range(10):
    proc = _start(killed, *args)
    if rng.random() < 0.3:  # While starting: imports, corpus, restore, compilation.
      time.sleep(rng.uniform(0.5, 6.0))
      moments.append('starting')
    else:  # While training: some steps after an evaluation, maybe mid-save.
      _wait_for_metrics(killed, _metric_lines(killed) + 1, proc)
      time.sleep(rng.uniform(0.0, 0.4))
      moments.append(f'after {_metric_lines(killed)} evaluations')
    assert proc.poll() is None, 'the run finished before it was killed; make it longer'
    proc.kill()
    proc.wait()
  assert sum(m != 'starting' for m in moments) >= 5, moments
  code, err = _finish(_start(killed, *args))
  assert code == 0, err[-3000:]
  code, err = _finish(_start(straight, *args))
  assert code == 0, err[-3000:]
  _assert_same_run(straight, killed)


@pytest.fixture
def small_disk(tmp_path):
  """A 3 MB tmpfs (root only; skipped elsewhere)."""
  mount = tmp_path / 'disk'
  mount.mkdir()
  if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', str(mount)],
                    capture_output=True).returncode != 0:
    pytest.skip('cannot mount a tmpfs here (needs root)')
  yield mount
  subprocess.run(['umount', '-l', str(mount)], capture_output=True)


def test_a_full_disk_is_a_clear_error_and_the_last_checkpoint_survives(small_disk):
  from configs import tiny
  from rnnlm.training import train
  from rnnlm.errors import UserError
  wd = str(small_disk / 'run')
  config = tiny.get_config()
  config.train.num_steps, config.eval.eval_every = 5, 5
  train.train_and_evaluate(config, wd)
  step, before = _params(wd)
  assert step == 5
  # Fill the disk to within 20 kB, then ask for more steps.
  st = os.statvfs(small_disk)
  filler = small_disk / 'filler'
  filler.write_bytes(b'\0' * (st.f_bavail * st.f_frsize - 20_000))
  config.train.num_steps = 20
  with pytest.raises(UserError, match=r'No space left on device\. The last complete checkpoint'
                                      r' \(step 5\) is intact'):
    train.train_and_evaluate(config, wd)
  step, after = _params(wd)
  assert step == 5
  for x, y in zip(before, after):
    np.testing.assert_array_equal(x, y)
  # Space again: the same command resumes and finishes.
  filler.unlink()
  assert train.train_and_evaluate(config, wd)['final_step'] == 20
