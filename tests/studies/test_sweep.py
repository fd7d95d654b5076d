import json
import os

import numpy as np
import pytest

from configs import tiny
from rnnlm.studies import sweep
from rnnlm.training import run_files
from rnnlm.errors import UserError


def test_power_law_fit_recovers_synthetic_parameters():
  x = np.geomspace(1e3, 1e7, 7)
  y = 1.2 + 30.0 * x ** -0.35
  fit = sweep.fit_power_law(x, y)
  assert fit['L_inf'] == pytest.approx(1.2, rel=1e-3)
  assert fit['alpha'] == pytest.approx(0.35, rel=1e-3)
  assert fit['a'] == pytest.approx(30.0, rel=1e-2)
  assert fit['rmse'] < 1e-6
  with pytest.raises(ValueError):
    sweep.fit_power_law([1, 2], [1, 2])


def test_sweep_resumes_and_isolates_failures(tmp_path):
  base = tiny.get_config()
  base.train.num_steps = 6
  base.eval.eval_every = 3
  base.eval.sample_length = 0
  grid = [{'model.hidden_size': 8}, {'model.hidden_size': 12},
          {'model.hidden_size': 16, 'model.cell': 'no_such_cell'}]
  d = str(tmp_path / 'sweep')
  rows = sweep.run_sweep(base, grid, d, trials_at_once=2)
  assert [r['status'] for r in rows] == ['done', 'done', 'failed']
  assert 'no_such_cell' in rows[2]['error']
  assert float(rows[0]['best_val_loss']) > 0 and int(rows[1]['num_params']) > int(rows[0]['num_params'])
  assert int(rows[0]['train_chars_seen']) == 6 * base.train.batch_size * base.train.seq_length
  assert len(sweep.read_csv(os.path.join(d, 'results.csv'))) == 3
  # An interrupted trial (no results.json, checkpoints kept) resumes; a finished one is skipped.
  t0 = os.path.join(d, 'trials', 'hidden_size-8', 'results.json')
  t1 = os.path.join(d, 'trials', 'hidden_size-12', 'results.json')
  mtime = os.path.getmtime(t0)
  os.remove(t1)
  rows2 = sweep.run_sweep(base, grid, d, trials_at_once=1)
  assert os.path.getmtime(t0) == mtime
  assert rows2[1]['status'] == 'done' and rows2[1]['best_val_loss'] == rows[1]['best_val_loss']
  report = sweep.write_report(d, 'test sweep', 'num_params', 'parameters')
  text = open(report).read()
  assert 'hidden_size-12' in text and 'Failed trials' in text
  assert os.path.exists(os.path.join(d, 'plots', 'loss_vs_num_params.png'))


def test_trials_planned_from_finished_ones_join_the_sweep(tmp_path):
  base = tiny.get_config()
  base.train.num_steps, base.eval.eval_every, base.eval.sample_length = 2, 2, 0
  asked = []

  def more(rows):
    asked.append(sorted(r['name'] for r in rows))
    # After hidden 8 has finished, add hidden 12 (and 8 again: ignored).
    return ([{'model.hidden_size': 12}, {'model.hidden_size': 8}]
            if any(r['name'] == 'hidden_size-8' for r in rows) else [])

  d = str(tmp_path / 'sweep')
  rows = sweep.run_sweep(base, [{'model.hidden_size': 8}], d, more=more)
  assert [r['name'] for r in rows] == ['hidden_size-8', 'hidden_size-12']
  assert all(r['status'] == 'done' for r in rows)
  # Asked until it plans nothing new: twice after hidden 8 (the second adds nothing).
  assert asked == [[], ['hidden_size-8'], ['hidden_size-8'], ['hidden_size-12', 'hidden_size-8']]
  # Run again: both finished before, planned again at the start without running.
  asked.clear()
  rows = sweep.run_sweep(base, [{'model.hidden_size': 8}], d, more=more)
  assert [r['name'] for r in rows] == ['hidden_size-8', 'hidden_size-12']
  assert asked == [['hidden_size-8'], ['hidden_size-12', 'hidden_size-8']]


def test_a_resumed_sweep_plans_from_all_its_finished_trials_before_running_one(tmp_path):
  base = tiny.get_config()
  base.train.num_steps, base.eval.eval_every, base.eval.sample_length = 2, 2, 0
  d = str(tmp_path / 'sweep')
  sweep.run_sweep(base, [{'model.hidden_size': h} for h in (8, 12, 16)], d)
  new_trial = os.path.join(d, 'trials', 'hidden_size-10', 'results.json')
  chain = {'hidden_size-8': 12, 'hidden_size-12': 16, 'hidden_size-16': 20}
  asked = []

  def more(rows):  # Each finished trial of the chain plans the next.
    names = {r['name'] for r in rows}
    asked.append((sorted(names), os.path.exists(new_trial)))
    return [{'model.hidden_size': h} for n, h in chain.items() if n in names]

  rows = sweep.run_sweep(base, [{'model.hidden_size': 8}, {'model.hidden_size': 10}], d,
                         more=more)
  # 12 and 16 finished before: the chain reaches 20 before hidden 10 has run.
  assert asked[:3] == [(['hidden_size-8'], False),
                       (['hidden_size-12', 'hidden_size-8'], False),
                       (['hidden_size-12', 'hidden_size-16', 'hidden_size-8'], False)]
  assert [r['name'] for r in rows] == ['hidden_size-8', 'hidden_size-10', 'hidden_size-12',
                                       'hidden_size-16', 'hidden_size-20']
  assert all(r['status'] == 'done' for r in rows)


@pytest.mark.slow
def test_a_segfaulting_trial_is_recorded_and_the_others_go_on(tmp_path):
  import multiprocessing
  import signal
  import threading
  import time
  base = tiny.get_config()
  base.eval.sample_length = 0
  base.eval.eval_every = 50
  grid = [{'train.num_steps': 3000}, {'train.num_steps': 6}]
  d = str(tmp_path / 'sweep')
  out = {}
  thread = threading.Thread(target=lambda: out.update(rows=sweep.run_sweep(base, grid, d, 2)))
  thread.start()
  metrics = os.path.join(d, 'trials', 'num_steps-3000', 'metrics.jsonl')
  deadline = time.time() + 120
  while not os.path.exists(metrics) and time.time() < deadline:
    time.sleep(0.1)
  [victim] = [p for p in multiprocessing.active_children() if p.name == 'trial num_steps-3000']
  os.kill(victim.pid, signal.SIGSEGV)  # What a crash in native code delivers.
  thread.join(timeout=300)
  rows = out['rows']
  assert [r['status'] for r in rows] == ['failed', 'done']
  assert rows[0]['error'] == 'killed by SIGSEGV'
  # Run again: the killed trial resumes from its checkpoint and finishes.
  rows = sweep.run_sweep(base, [grid[0]], d)
  assert rows[0]['status'] == 'done' and int(rows[0]['final_step']) == 3000


SWEEP_SCRIPT = r'''
import sys
from absl import logging
from configs import tiny
from rnnlm.studies import sweep
from rnnlm.errors import Interrupted
base = tiny.get_config()
base.eval.sample_length, base.eval.eval_every, base.train.num_steps = 0, 50, 100000
try:
  sweep.run_sweep(base, [{'model.hidden_size': 8}], sys.argv[1])
except Interrupted as e:
  print(e, file=sys.stderr)
  sys.exit(128 + e.signum)
'''


def test_sigterm_to_a_sweep_stops_its_trials_with_checkpoints(tmp_path):
  import signal
  import subprocess
  import sys
  import time
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  d = str(tmp_path / 'sweep')
  proc = subprocess.Popen([sys.executable, '-c', SWEEP_SCRIPT, d], cwd=root,
                          env=dict(os.environ, XLA_FLAGS='', PYTHONPATH=root),
                          stderr=subprocess.PIPE, text=True)
  metrics = os.path.join(d, 'trials', 'hidden_size-8', 'metrics.jsonl')
  deadline = time.time() + 120
  while not os.path.exists(metrics) and time.time() < deadline:
    time.sleep(0.1)
  children = subprocess.run(['ps', '-o', 'pid=', '--ppid', str(proc.pid)], capture_output=True,
                            text=True).stdout.split()
  trial = [int(p) for p in children
           if 'spawn_main' in open(f'/proc/{p}/cmdline').read() and
           'resource_tracker' not in open(f'/proc/{p}/cmdline').read()]
  assert len(trial) == 1, children
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
  assert 'SIGTERM: the sweep stopped' in err
  assert not os.path.exists(f'/proc/{trial[0]}'), 'the trial process outlived the sweep'
  from rnnlm.training import checkpoint
  step = checkpoint.Checkpointer(os.path.join(d, 'trials', 'hidden_size-8')).latest_step()
  assert step and step >= 50  # Saved where it stopped (evaluations alone save every 50).


@pytest.mark.slow
def test_submitit_executor_runs_trials_as_jobs(tmp_path):
  """The SLURM code path (a job array through submitit), run by submitit's local
  executor: the same results.csv, failures recorded with the job's error, reruns
  skip finished trials."""
  pytest.importorskip('submitit')
  base = tiny.get_config()
  base.train.num_steps, base.eval.eval_every, base.eval.sample_length = 4, 2, 0
  grid = [{'model.hidden_size': 8}, {'model.hidden_size': 16, 'train.learning_rate': -1.0}]
  executor = sweep.executor_config()
  executor.kind = 'submitit_local'
  executor.timeout_minutes = 10
  d = str(tmp_path / 'sweep')
  rows = sweep.run_sweep(base, grid, d, trials_at_once=2, executor=executor)
  assert [r['status'] for r in rows] == ['done', 'failed']
  assert 'learning_rate must be > 0' in rows[1]['error'] and '(job ' in rows[1]['error']
  assert float(rows[0]['best_val_loss']) > 0
  assert os.listdir(os.path.join(d, 'jobs'))  # submitit's per-job logs.
  mtime = os.path.getmtime(os.path.join(d, 'trials', 'hidden_size-8', 'results.json'))
  rows = sweep.run_sweep(base, grid[:1], d, executor=executor)
  assert rows[0]['status'] == 'done'
  assert os.path.getmtime(os.path.join(d, 'trials', 'hidden_size-8', 'results.json')) == mtime


@pytest.mark.slow
def test_one_local_trial_per_listed_device(tmp_path):
  executor = sweep.executor_config()
  executor.devices = '2,5'
  assert sweep.trial_env(executor, 1)['CUDA_VISIBLE_DEVICES'] == '5'
  assert sweep.trial_env(executor, 0)['TPU_VISIBLE_CHIPS'] == '2'
  assert sweep.trial_env(sweep.executor_config(), 0) == {}
  # Two slots, three trials: each runs in a slot's environment (no GPU here: a no-op).
  base = tiny.get_config()
  base.train.num_steps, base.eval.eval_every, base.eval.sample_length = 2, 2, 0
  rows = sweep.run_sweep(base, [{'seed': s} for s in range(3)], str(tmp_path / 's'),
                         executor=executor)
  assert [r['status'] for r in rows] == ['done'] * 3


def _search_config(title, steps, eval_every, axes, **sweep_fields):
  """A sweep config over the tiny corpus searching `axes`, with `sweep_fields` set."""
  import ml_collections
  config = ml_collections.ConfigDict()
  config.base = tiny.get_config()
  config.base.train.num_steps, config.base.eval.eval_every = steps, eval_every
  config.base.eval.sample_length = 0
  config.sweep = ml_collections.ConfigDict()
  config.sweep.title = title
  config.sweep.axes = axes
  for k, v in sweep_fields.items():
    config.sweep[k] = v
  return config


@pytest.mark.slow
def test_grid_search_over_axes(tmp_path):
  assert sweep.grid_product({'a': (1, 2), 'b': ('x', 'y', 'z')})[:4] == [
      {'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}, {'a': 1, 'b': 'z'}, {'a': 2, 'b': 'x'}]
  config = _search_config('grid', 4, 2,
                          {'model:hidden_size': (8, 16), 'train:learning_rate': (1e-3, 1e-2)},
                          sample=3, trials_at_once=2)
  path = sweep.run_from_config(config, str(tmp_path / 'g'))
  rows = sweep.read_csv(os.path.join(tmp_path, 'g', 'results.csv'))
  assert len(rows) == 3 and all(r['status'] == 'done' for r in rows)
  text = open(path).read()
  losses = [float(l.split('|')[3]) for l in text.splitlines() if l.startswith('| hidden_size')]
  assert losses == sorted(losses) and len(losses) == 3  # Best first.


def test_coordinate_grid_and_best_combination_by_hand():
  axes = {'a': (1, 2, 3), 'b': ('x', 'y')}
  centre = {'a': 2, 'b': 'x'}
  grid = sweep.coordinate_grid(axes, centre)
  assert grid == [{'a': 2, 'b': 'x'}, {'a': 1, 'b': 'x'}, {'a': 3, 'b': 'x'},
                  {'a': 2, 'b': 'y'}]
  losses = {'a-2_b-x': 1.5, 'a-1_b-x': 1.6, 'a-3_b-x': 1.4, 'a-2_b-y': 1.45}
  rows = [{'name': n, 'status': 'done', 'best_val_loss': str(l)} for n, l in losses.items()]
  # a=3 beats the centre's a=2; b=y beats b=x: together.
  assert sweep.best_combination(axes, centre, rows) == {'a': 3, 'b': 'y'}
  rows[3]['best_val_loss'] = '1.55'  # b=y now worse than the centre: b stays x.
  assert sweep.best_combination(axes, centre, rows) == {'a': 3, 'b': 'x'}
  assert sweep.best_combination(axes, centre, rows[:3]) is None  # b=y not run yet.
  rows[1]['status'] = 'failed'
  assert sweep.best_combination(axes, centre, rows) is None
  # A centre value outside its axis is a candidate too.
  rows = [{'name': n, 'status': 'done', 'best_val_loss': str(l)} for n, l in
          {'a-5_b-x': 1.3, 'a-1_b-x': 1.6, 'a-2_b-x': 1.4, 'a-3_b-x': 1.5}.items()]
  assert sweep.best_combination({'a': (1, 2, 3)}, {'a': 5, 'b': 'x'}, rows) == {'a': 5, 'b': 'x'}
  with pytest.raises(UserError, match='centre has no value for b'):
    sweep.coordinate_grid(axes, {'a': 2})


def test_a_joint_axis_sets_its_fields_together(tmp_path):
  # 'c+d' pairs values: the search never tries c=gru with d=bf16, which no value lists.
  axes = {'a': (1, 2), 'c+d': (('lstm', 'f32'), ('gru', 'f32'), ('lstm', 'bf16'))}
  centre = {'a': 1, 'c': 'lstm', 'd': 'f32'}
  grid = sweep.coordinate_grid(axes, centre)
  assert grid == [{'a': 1, 'c': 'lstm', 'd': 'f32'}, {'a': 2, 'c': 'lstm', 'd': 'f32'},
                  {'a': 1, 'c': 'gru', 'd': 'f32'}, {'a': 1, 'c': 'lstm', 'd': 'bf16'}]
  losses = {'a-1_c-lstm_d-f32': 1.6, 'a-2_c-lstm_d-f32': 1.5, 'a-1_c-gru_d-f32': 1.4,
            'a-1_c-lstm_d-bf16': 1.45}
  rows = [{'name': n, 'status': 'done', 'best_val_loss': str(l)} for n, l in losses.items()]
  assert sweep.best_combination(axes, centre, rows) == {'a': 2, 'c': 'gru', 'd': 'f32'}
  sweep.write_csv(str(tmp_path / 'results.csv'), rows)
  lines = sweep.write_coordinate_report(str(tmp_path), axes, centre)
  assert '| c+d | lstm, bf16 | 1.45 | -0.15 |' in lines
  assert [g['c'] + g['d'] for g in sweep.grid_product(axes)] == ['lstmf32', 'gruf32',
                                                                 'lstmbf16'] * 2
  assert sweep.axis_label('model.cell+model.compute_dtype') == 'cell+compute_dtype'
  with pytest.raises(UserError, match='sets 2 fields, so each value must be a tuple of 2'):
    sweep.coordinate_grid({'c+d': ('gru',)}, centre)
  with pytest.raises(UserError, match='centre has no value for d'):
    sweep.coordinate_grid(axes, {'a': 1, 'c': 'lstm'})


@pytest.mark.slow
def test_coordinate_search_runs_the_combination_and_reports_each_change(tmp_path):
  config = _search_config(
      'coordinate', 6, 3, {'model:hidden_size': (8, 16), 'train:learning_rate': (1e-3, 3e-2)},
      search='coordinate', centre={'model:hidden_size': 8, 'train:learning_rate': 1e-3},
      trials_at_once=1)
  d = str(tmp_path / 'c')
  path = sweep.run_from_config(config, d)
  rows = sweep.read_csv(os.path.join(d, 'results.csv'))
  loss = {r['name']: float(r['best_val_loss']) for r in rows}
  centre = 'hidden_size-8_learning_rate-0.001'
  assert centre in loss and len(rows) in (3, 4)
  best_h = min((8, 16), key=lambda h: loss[f'hidden_size-{h}_learning_rate-0.001'])
  best_lr = min((0.001, 0.03), key=lambda lr: loss[f'hidden_size-8_learning_rate-{lr:.4g}'])
  combo = f'hidden_size-{best_h}_learning_rate-{best_lr:.4g}'
  assert combo in loss  # Run after the one-factor trials (or one of them already).
  assert len(rows) == (3 if combo in (centre, 'hidden_size-16_learning_rate-0.001',
                                      'hidden_size-8_learning_rate-0.03') else 4)
  text = open(path).read()
  h16 = loss['hidden_size-16_learning_rate-0.001']
  assert f'| hidden_size | 16 | {h16:.4g} | {round(h16 - loss[centre], 4):.4g} |' in text
  # Rerun: nothing new runs, the same rows come back.
  sweep.run_from_config(config, d)
  assert sweep.read_csv(os.path.join(d, 'results.csv')) == rows


@pytest.mark.parametrize('minutes', ['5', '15', '30'])
@pytest.mark.parametrize('amx', [True, False])
def test_budget_search_trials_are_valid_configs(minutes, amx, monkeypatch):
  from configs.sweeps import shakespeare_budget
  from rnnlm import config as config_lib
  from rnnlm.model import kernels
  monkeypatch.setattr(kernels, 'amx', lambda: amx)
  c = shakespeare_budget.get_config(minutes)
  axes, centre = sweep.search_axes(c.sweep)
  grid = sweep.coordinate_grid(axes, centre)
  assert len(grid) == 1 + sum(len(v) - 1 for v in axes.values())
  if minutes == '30':  # The centre first (a second run of it), then dropout.
    assert [g['model.dropout'] for g in grid[:3]] == [0.1, 0.2, 0.3]
  if minutes == '15':  # The centre first, then the lower rates.
    assert [g['train.learning_rate'] for g in grid[:3]] == [6e-3, 3e-3, 4e-3]
  if minutes != '5':  # The LSTM last, in bfloat16 too only where AMX runs it.
    lstm = [g['model.compute_dtype'] for g in grid if g['model.cell'] == 'lstm']
    assert lstm == (['float32', 'bfloat16'] if amx else ['float32'])
    assert grid[-1]['model.cell'] == 'lstm'
  else:  # bfloat16 only where AMX runs it.
    assert (sum(g['model.compute_dtype'] == 'bfloat16' for g in grid) == 1) == amx
    assert len(grid) == (11 if amx else 10)
  assert len({sweep.trial_name(o) for o in grid}) == len(grid)
  for overrides in grid:
    config_lib.validate(sweep.apply_overrides(c.base, overrides))


def test_axes_run_in_the_order_named():
  axes = {'a': (1, 2), 'b': ('x', 'y')}
  ordered = sweep._ordered_axes(axes, ('b', 'a'))
  assert sweep.coordinate_grid(ordered, {'a': 1, 'b': 'x'}) == [
      {'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}, {'a': 2, 'b': 'x'}]
  assert sweep._ordered_axes(axes, None) is axes


def test_an_order_that_misses_an_axis_is_a_user_error(tmp_path):
  config = _search_config('x', 2, 2, {'model:hidden_size': (8,), 'model:dropout': (0.0,)},
                          search='coordinate', order=('model:hidden_size',),
                          centre={'model:hidden_size': 8, 'model:dropout': 0.0})
  with pytest.raises(UserError, match='sweep.order names model.hidden_size but the axes are'
                     ' model.dropout, model.hidden_size; name each axis once'):
    sweep.run_from_config(config, str(tmp_path / 'x'))
  assert not os.path.exists(tmp_path / 'x' / 'results.csv')  # Nothing run or written.


def test_an_unknown_search_is_a_user_error(tmp_path):
  config = _search_config('x', 2, 2, {'model:hidden_size': (8,)}, search='random')
  with pytest.raises(UserError, match='unknown sweep.search .random.; use grid or coordinate'):
    sweep.run_from_config(config, str(tmp_path / 'x'))
  assert not os.path.exists(tmp_path / 'x' / 'results.csv')  # Nothing run or written.


def test_local_trials_pinned_to_their_own_cores(tmp_path, monkeypatch):
  executor = sweep.executor_config()
  executor.cpus_per_local_trial = 1
  monkeypatch.setattr(sweep.os, 'cpu_count', lambda: 2)
  envs = [sweep.trial_env(executor, slot) for slot in range(3)]
  assert [e['RNNLM_TRIAL_CPUS'] for e in envs] == ['0', '1', '0']  # Wraps past the cores.
  assert all(e['RNNLM_KERNEL_THREADS'] == '1' for e in envs)
  executor.cpus_per_local_trial = 2
  assert sweep.trial_env(executor, 1)['RNNLM_TRIAL_CPUS'] == '0,1'
  monkeypatch.undo()
  # Two pinned trials side by side finish as unpinned ones do.
  executor.cpus_per_local_trial = 1
  base = tiny.get_config()
  base.train.num_steps, base.eval.eval_every, base.eval.sample_length = 2, 2, 0
  rows = sweep.run_sweep(base, [{'seed': s} for s in range(2)], str(tmp_path / 's'),
                         trials_at_once=2, executor=executor)
  assert [r['status'] for r in rows] == ['done'] * 2


@pytest.mark.slow
def test_a_trial_with_damaged_results_runs_again_and_the_table_is_rebuilt(tmp_path):
  base = tiny.get_config()
  base.train.num_steps, base.eval.eval_every, base.eval.sample_length = 4, 2, 0
  d = str(tmp_path / 's')
  grid = [{'seed': s} for s in range(2)]
  first = sweep.run_sweep(base, grid, d)
  results = os.path.join(d, 'trials', first[1]['name'], 'results.json')
  with open(results, 'r+') as f:
    text = f.read()
    f.seek(0)
    f.write(text[:len(text) // 2])  # Cut short, as an interrupted copy leaves it.
    f.truncate()
  with open(os.path.join(d, 'results.csv'), 'w') as f:
    f.write('garbage\n')
  again = sweep.run_sweep(base, grid, d)
  assert json.load(open(results))['best_val_loss'] == float(first[1]['best_val_loss'])
  assert [r['status'] for r in again] == ['done', 'done']
  rows = sweep.read_csv(os.path.join(d, 'results.csv'))
  assert [(r['name'], r['best_val_loss']) for r in rows] == [
      (r['name'], str(r['best_val_loss'])) for r in first]


def test_a_trial_stopped_before_the_start_epoch_is_not_finished(tmp_path):
  wd = tmp_path / 't'
  wd.mkdir()
  (wd / 'results.json').write_text(json.dumps(
      {'num_params': 1, 'best_step': 20, 'best_val_loss': 2.0, 'final_step': 30,
       'stopped': 'early_stopping'}))
  # Evaluated every 10 steps of a 10-step epoch: it stopped at epoch 3.
  (wd / 'metrics.jsonl').write_text(''.join(
      json.dumps({'step': s, 'epoch': s / 10, 'val_loss': 2.0}) + '\n' for s in (10, 20, 30)))
  config = tiny.get_config()
  for start, finished in ((0.0, True), (3.0, True), (3.5, False), (5.0, False)):
    config.train.early_stopping_start_epoch = start
    assert run_files.finished(str(wd), config) is finished, start
  assert run_files.finished(str(wd))
  # A run that stopped at its step cap is finished whatever the start epoch.
  r = json.loads((wd / 'results.json').read_text())
  (wd / 'results.json').write_text(json.dumps(dict(r, stopped='num_steps')))
  assert run_files.finished(str(wd), config)
