"""Two JAX processes on loopback (jax.distributed + gloo) train like one process."""

import json
import os
import socket
import subprocess
import sys

import jax
import pytest

from configs import tiny
from rnnlm.training import parallel
from rnnlm.model import recurrence
from rnnlm.training import steps
from rnnlm.training import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WORKER = r'''
import json, os, sys
pid, port, wd, impl = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
from rnnlm.training import parallel
parallel.initialize_distributed(f'127.0.0.1:{port}', num_processes=2, process_id=pid)
import jax
from configs import tiny
from rnnlm.training import parallel
from rnnlm.model import recurrence
from rnnlm.training import train
c = tiny.get_config(); c.train.num_steps = 10; c.eval.eval_every = 5
c.model.recurrence = impl
r = train.train_and_evaluate(c, wd)
print('RESULT ' + json.dumps({'process': jax.process_index(), 'devices': jax.device_count(), **r}))
'''


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
  port = _free_port()
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2',
             JAX_PLATFORMS='cpu')
  wd = str(tmp_path / 'multi')
  # The compiled kernels where they run (sharded per device), else the scan.
  impl = 'kernel' if recurrence.kernel_unavailable_reason('lstm', 32) is None else 'scan'
  procs = [subprocess.Popen([sys.executable, '-c', WORKER, str(i), str(port), wd, impl], cwd=ROOT,
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


def test_cluster_detection_reads_the_launcher():
  from rnnlm.training import parallel
  slurm = {'SLURM_JOB_ID': '7', 'SLURM_STEP_NODELIST': 'node[1-2]', 'SLURM_NTASKS': '2',
           'SLURM_PROCID': '0', 'SLURM_LOCALID': '0'}
  assert parallel.detect_cluster(slurm) == 'SLURM'
  assert parallel.detect_cluster(dict(slurm, SLURM_NTASKS='1')) is None  # One task: alone.
  assert parallel.detect_cluster({'SLURM_JOB_ID': '7'}) is None  # salloc shell, no srun.
  assert parallel.detect_cluster({'OMPI_MCA_orte_hnp_uri': 'x', 'OMPI_COMM_WORLD_SIZE': '4'}) == (
      'Open MPI')
  assert parallel.detect_cluster({'TPU_WORKER_HOSTNAMES': 'a,b'}) == 'Cloud TPU'
  assert parallel.detect_cluster({'TPU_WORKER_HOSTNAMES': 'a'}) is None
  assert parallel.detect_cluster({'HOME': '/root'}) is None


@pytest.mark.slow
def test_train_joins_an_srun_job_without_flags(tmp_path):
  """Two processes started as srun would start them (its environment, faked on
  loopback): experiments/train.py, given no distributed flags, forms one job."""
  # JAX's coordinator port for a SLURM job: 61440 + job id mod 4096. Find a free one.
  for job_id in range(os.getpid() % 4096, os.getpid() % 4096 + 50):
    with socket.socket() as s:
      if s.connect_ex(('127.0.0.1', 61440 + job_id % 4096)) != 0:
        break
  wd = str(tmp_path / 'srun')
  procs = []
  for i in range(2):
    env = dict(os.environ, XLA_FLAGS='', JAX_PLATFORMS='cpu', SLURM_JOB_ID=str(job_id),
               SLURM_STEP_NODELIST='localhost', SLURM_NTASKS='2', SLURM_PROCID=str(i),
               SLURM_LOCALID=str(i), SLURM_STEP_NUM_NODES='1')
    procs.append(subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'experiments', 'train.py'), '--config=configs/tiny.py',
         f'--workdir={wd}', '--config.train.num_steps=4', '--config.eval.eval_every=2'],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  outs = [p.communicate(timeout=240) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
    assert 'Found a SLURM job of several processes' in err
  assert 'JAX process 0 / 2' in outs[0][1] and 'JAX process 1 / 2' in outs[1][1]
  assert json.load(open(os.path.join(wd, 'results.json')))['final_step'] == 4


def test_kernels_run_per_device_without_gathering_the_batch():
  """On a batch-sharded mesh of 4 devices, each kernel call gets its device's rows
  (2 of 8): the compiled step has no all-gather, only the all-reduce of gradients
  and loss."""
  import re
  import jax.numpy as jnp
  import numpy as np
  if recurrence.kernel_unavailable_reason('lstm', 32):
    pytest.skip(recurrence.kernel_unavailable_reason('lstm', 32))
  config = tiny.get_config()
  config.model.recurrence, config.train.batch_size = 'kernel', 8
  mesh = parallel.make_mesh(jax.devices()[:4])
  _, graphdef, optimizer, state = steps.create_train_state(config, 40, 10, 100, mesh)
  train_fn, _ = steps.compile_steps(graphdef, optimizer, mesh)
  put = lambda x: parallel.shard_batch(x, mesh)
  batch = {'inputs': put(np.zeros((8, 16), np.int32)), 'targets': put(np.zeros((8, 16), np.int32)),
           'mask': put(np.ones((8, 16), np.float32)), 'reset': jnp.float32(0)}
  hlo = train_fn.lower(state, batch).compile().as_text()
  calls = [l for l in hlo.splitlines() if 'custom-call(' in l and 'rnnlm' in l]
  assert calls and 'all-gather' not in hlo
  assert re.search(r'all-reduce', hlo)
  for line in calls:  # Every [T, B, ...] operand and result has 2 rows, not 8.
    assert not re.search(r'f32\[16,8,', line), line
  assert any(re.search(r'f32\[16,2,', l) for l in calls)
