"""Throughput of small paper-table trials: one at a time on both cores, or two pinned
side by side, one core each (`sweep.executor.cpus_per_local_trial=1`).

  python docs/results/paper_warpeace/side_by_side.py lstm 1 64 300   # from the repo root
"""
import json, os, sys, time, multiprocessing as mp
sys.path.insert(0, os.getcwd())
from configs.sweeps import paper_table
from rnnlm.studies import sweep

def cfg(cell, layers, hidden, steps):
  c = paper_table.get_config('warpeace').base
  c.data.download_from = '../shared/data/warpeace_input.txt'
  c.model.cell, c.model.num_layers, c.model.hidden_size = cell, layers, hidden
  c.train.num_steps = steps; c.eval.eval_every = 10_000; c.eval.sample_length = 0
  return c

def run(cell, layers, hidden, steps, wd, env):
  os.environ.update(env)
  if env.get('RNNLM_TRIAL_CPUS'):
    os.sched_setaffinity(0, {int(x) for x in env['RNNLM_TRIAL_CPUS'].split(',')})
  from absl import logging; logging.set_verbosity(logging.WARNING)
  from rnnlm.training import train
  r = train.train_and_evaluate(cfg(cell, layers, hidden, steps), wd)
  print(json.dumps({'wd': wd, 'train_time_s': r['train_time_s']}), flush=True)

if __name__ == '__main__':
  cell, layers, hidden, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
  ctx = mp.get_context('spawn')
  import shutil; shutil.rmtree('/tmp/side_by_side', ignore_errors=True)
  t = time.time()
  p = ctx.Process(target=run, args=(cell, layers, hidden, steps, '/tmp/side_by_side/a', {})); p.start(); p.join()
  one = time.time() - t
  t = time.time()
  e = sweep.executor_config(); e.cpus_per_local_trial = 1
  ps = [ctx.Process(target=run, args=(cell, layers, hidden, steps, f'/tmp/side_by_side/b{i}', sweep.trial_env(e, i))) for i in range(2)]
  [p.start() for p in ps]; [p.join() for p in ps]
  two = time.time() - t
  print(f'{cell} {layers}x{hidden} {steps} steps: one trial {one:.1f}s wall; two pinned at once {two:.1f}s wall; throughput ratio {2*one/two:.2f}x')
