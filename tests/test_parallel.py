"""Two JAX processes on loopback (jax.distributed + gloo) train like one process."""

import json
import os
import socket
import subprocess
import sys

import jax
import pytest

from configs import tiny
from rnnlm import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r'''
import json, os, sys
pid, port, wd = int(sys.argv[1]), sys.argv[2], sys.argv[3]
from rnnlm import parallel
parallel.initialize_distributed(f'127.0.0.1:{port}', num_processes=2, process_id=pid)
import jax
from configs import tiny
from rnnlm import train
c = tiny.get_config(); c.train.num_steps = 10; c.eval.eval_every = 5
r = train.train_and_evaluate(c, wd)
print('RESULT ' + json.dumps({'process': jax.process_index(), 'devices': jax.device_count(), **r}))
'''


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
  port = _free_port()
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2',
             JAX_PLATFORMS='cpu')
  wd = str(tmp_path / 'multi')
  procs = [subprocess.Popen([sys.executable, '-c', WORKER, str(i), str(port), wd], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=240) for p in procs]
  results = []
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
    results.append(json.loads(next(l for l in out.splitlines() if l.startswith('RESULT '))[7:]))
  assert [r['devices'] for r in results] == [4, 4]
  config = tiny.get_config()
  config.train.num_steps = 10
  config.eval.eval_every = 5
  single = train.train_and_evaluate(config, str(tmp_path / 'single'), devices=jax.devices()[:1])
  for r in results:
    assert r['best_val_loss'] == pytest.approx(single['best_val_loss'], rel=1e-5)
    assert r['test_loss'] == pytest.approx(single['test_loss'], rel=1e-5)
  # Only process 0 writes the run's files.
  records = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  assert [r['step'] for r in records] == [5, 10]
