"""Real training processes stopped by signals: SIGTERM saves and resumes bit-exactly;
SIGKILL at any step, during a save included, leaves a workdir that resumes to the same
result. The signals land at chosen steps (`periodic.SelfSignal`), not at moments in
time, so that no outcome depends on the machine's speed."""

import json
import os
import random
import re
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from rnnlm.training import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _start(workdir, *extra, signal_at: str = ''):
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='', RNNLM_SELF_SIGNAL=signal_at)
  return subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'experiments', 'train.py'), '--config=configs/tiny.py',
       f'--workdir={workdir}', *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=300):
  out, err = proc.communicate(timeout=timeout)
  return proc.returncode, err


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
  code, err = _finish(_start(stopped, *ARGS, signal_at='SIGTERM@250'))
  assert code == 128 + signal.SIGTERM, err[-3000:]
  [line] = [l for l in err.splitlines() if l.startswith('SIGTERM: stopped at step')]
  assert int(re.search(r'step (\d+)', line).group(1)) == 250  # Between two evaluations.
  assert checkpoint.Checkpointer(stopped).latest_step() == 250
  code, err = _finish(_start(stopped, *ARGS))
  assert code == 0, err[-3000:]
  code, err = _finish(_start(straight, *ARGS))
  assert code == 0, err[-3000:]
  _assert_same_run(straight, stopped)


def _latest(workdir) -> int:
  if not os.path.isdir(os.path.join(workdir, 'checkpoints')):
    return 0
  return checkpoint.Checkpointer(workdir, read_only=True).latest_step() or 0


@pytest.mark.slow
def test_sigkill_at_random_steps_never_breaks_resume(tmp_path):
  straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
  args = ('--config.train.num_steps=3000', *ARGS[1:])
  rng = random.Random(0)
  for _ in range(10):
    latest = _latest(killed)
    if rng.random() < 0.3:  # Right after restoring (or starting) and compiling.
      at = latest + 1
    else:  # Some steps after an evaluation, maybe while its checkpoint is written.
      at = 100 * (latest // 100 + rng.randint(1, 2)) + rng.choice((0, 1, 2, 5, 30))
    code, err = _finish(_start(killed, *args, signal_at=f'SIGKILL@{at}'))
    assert code == -signal.SIGKILL, err[-3000:]
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
