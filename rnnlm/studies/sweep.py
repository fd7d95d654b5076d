"""Sweeps: many training runs over a grid, results in one table, figures, fits, report.

A sweep directory:

  sweepdir/trials/<name>/   one workdir per trial (resumable like any run)
  sweepdir/results.csv      one row per finished or failed trial
  sweepdir/fits.json        saturating power-law fits
  sweepdir/plots/*.png      figures
  sweepdir/report.md        the table, the fits and the figures

Trials run as local processes, or as a SLURM job array through submitit
(`executor_config`); either way their results land in the same sweep directory.
Running the same sweep again skips finished trials (those with results.json),
resumes interrupted ones from their checkpoints, and retries failed ones. Each
trial runs in a fresh process of its own: one that raises, diverges, is killed by
a signal or crashes is recorded as failed with its cause, and the others go on.
"""

from __future__ import annotations

import copy
import csv
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import threading
from typing import Callable, Sequence

import ml_collections
import numpy as np
from absl import logging

from rnnlm.studies import report
from rnnlm.training import run_files
from rnnlm.errors import Interrupted, UserError

COLUMNS = ('name', 'cell', 'hidden_size', 'num_layers', 'learning_rate', 'seed',
           'train_fraction', 'num_params', 'train_split_chars', 'train_chars_seen', 'best_step',
           'final_step', 'stopped', 'best_val_loss', 'best_val_bpc', 'final_train_loss',
           'final_val_loss', 'test_loss', 'wall_s', 'train_time_s', 'status', 'error')


def trial_name(overrides: dict) -> str:
  """'hidden_size=256,train_fraction=0.1' -> 'hidden_size-256_train_fraction-0.1'."""
  fmt = lambda v: f'{v:.4g}' if isinstance(v, float) else str(v)
  return '_'.join(f'{k.split(".")[-1]}-{fmt(v)}' for k, v in overrides.items()) or 'base'


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict
                    ) -> ml_collections.ConfigDict:
  config = copy.deepcopy(config)
  with config.unlocked():
    for dotted, value in overrides.items():
      node = config
      *path, last = dotted.split('.')
      for p in path:
        node = node[p]
      if last not in node:
        raise UserError(f'sweep field {dotted} is not a config field; see configs/default.py')
      node[last] = value
  return config


def _trial_worker(config_json: str, workdir: str, conn, env: dict) -> None:
  """Runs one trial in a fresh process; sends ('done', '') or ('failed', cause)."""
  os.environ.update(env)  # Before JAX starts: which accelerator this trial sees.
  if env.get('RNNLM_TRIAL_CPUS') and hasattr(os, 'sched_setaffinity'):
    # Before JAX starts, so that its thread pools are sized to these cores.
    os.sched_setaffinity(0, {int(c) for c in env['RNNLM_TRIAL_CPUS'].split(',')})
  try:
    from absl import logging as absl_logging
    from rnnlm.training import hostmem
    from rnnlm.training import train
    absl_logging.set_verbosity(absl_logging.WARNING)
    hostmem.retain_freed_memory()  # A process of its own, as experiments/train.py.
    config = ml_collections.ConfigDict(json.loads(config_json))
    train.train_and_evaluate(config, workdir)
    conn.send(('done', ''))
  except BaseException as e:  # pylint: disable=broad-except
    conn.send(('failed', f'{type(e).__name__}: {e}'))
    raise SystemExit(1) from None


def _terminate(signum, frame):  # pylint: disable=unused-argument
  raise Interrupted('SIGTERM: the sweep stopped; its running trials saved checkpoints.'
                    ' Run the same command to resume', signum)


def executor_config() -> ml_collections.ConfigDict:
  """Where a sweep's trials run, as `sweep.executor` in a sweep config.

  kind: 'local' (a fresh process per trial on this machine), 'slurm' (a SLURM job
  array through submitit, one trial per job) or 'submitit_local' (submitit's
  local executor: the SLURM code path on this machine, for trying it out).
  """
  e = ml_collections.ConfigDict()
  e.kind = 'local'
  e.slurm_partition = ''
  e.timeout_minutes = 240  # Per trial; a trial cut off resumes when the sweep reruns.
  e.gpus_per_trial = 0
  # Local trials on a machine with several accelerators: their ids, e.g. '0,1,2,3';
  # one trial runs per device at a time and sees only that device. '': all devices.
  e.devices = ''
  e.cpus_per_trial = 2
  # Local trials only: pin each trial to this many cores of its own (slot i takes
  # cores i*n .. i*n+n-1, modulo the machine's) and cap the CPU kernels' threads to
  # match, so that trials_at_once trials share the cores without contention; 0: each
  # trial sees every core.
  e.cpus_per_local_trial = 0
  e.mem_gb = 16
  # Any other submitit/SLURM parameters, e.g. {'slurm_account': 'lab'}.
  e.extra = {}
  return e


def trial_env(executor: ml_collections.ConfigDict, slot: int) -> dict:
  """The environment variables that show local trial slot `slot` only its device."""
  env = {}
  n = int(executor.get('cpus_per_local_trial', 0) or 0)
  if n > 0:
    total = os.cpu_count() or 1
    env['RNNLM_KERNEL_THREADS'] = str(n)
    env['RNNLM_TRIAL_CPUS'] = ','.join(str((slot * n + i) % total) for i in range(n))
  if not executor.get('devices'):
    return env
  device = executor.devices.split(',')[slot].strip()
  # CUDA (NVIDIA), ROCm (AMD) and TPU runtimes each read their own variable.
  env.update({'CUDA_VISIBLE_DEVICES': device, 'HIP_VISIBLE_DEVICES': device,
              'TPU_VISIBLE_CHIPS': device, 'TPU_PROCESS_BOUNDS': '1,1,1',
              'TPU_CHIPS_PER_PROCESS_BOUNDS': '1,1,1'})
  return env


def _trial_job(config_json: str, workdir: str) -> dict:
  """One trial as a submitit job (in the job's own process)."""
  from rnnlm.training import hostmem
  from rnnlm.training import train
  hostmem.retain_freed_memory()
  return train.train_and_evaluate(ml_collections.ConfigDict(json.loads(config_json)), workdir)


def _run_submitit(pending, rows, flush, trials_at_once, e, sweep_dir) -> None:
  """Submits the pending trials as one job array and records each as it ends."""
  try:
    import submitit
  except ImportError:
    raise UserError("sweep.executor.kind=slurm needs submitit: pip install -e '.[slurm]'"
                    ) from None
  cluster = 'local' if e.kind == 'submitit_local' else 'slurm'
  ex = submitit.AutoExecutor(folder=os.path.join(sweep_dir, 'jobs', '%j'), cluster=cluster)
  params = dict(timeout_min=e.timeout_minutes, gpus_per_node=e.gpus_per_trial,
                cpus_per_task=e.cpus_per_trial, mem_gb=e.mem_gb, name='rnnlm-trial',
                slurm_array_parallelism=trials_at_once)
  if cluster == 'slurm' and e.slurm_partition:
    params['slurm_partition'] = e.slurm_partition
  params.update(dict(e.extra))
  ex.update_parameters(**params)
  if not pending:
    return
  jobs = ex.map_array(_trial_job, [c.to_json() for _, c, _ in pending],
                      [w for _, _, w in pending])
  logging.info('Submitted %d trials as %s jobs %s', len(jobs), cluster,
               ', '.join(j.job_id for j in jobs[:3]) + (' ...' if len(jobs) > 3 else ''))
  for job, (name, config, workdir) in zip(jobs, pending):
    try:
      job.result()
      rows[name] = _row(name, config, workdir, 'done')
    except Exception as err:  # pylint: disable=broad-except
      # submitit's FailedJobError holds the trial's traceback: keep its exception line.
      lines = [l.strip() for l in str(err).splitlines()]
      raised = [l for l in lines if re.match(r'^[\w.]+(Error|Exception|Interrupted): ', l)]
      cause = raised[-1] if raised else (lines[0] if lines else repr(err))
      rows[name] = _row(name, config, workdir, 'failed',
                        f'{cause} (job {job.job_id}, {type(err).__name__})')
      logging.warning('Trial %s failed: %s', name, rows[name]['error'])
    flush()


def _exit_cause(exitcode: int | None) -> str:
  if exitcode is not None and exitcode < 0:
    return f'killed by {signal.Signals(-exitcode).name}'
  return f'the trial process exited with status {exitcode} and no result'


def _row(name: str, config, workdir: str, status: str, error: str = '') -> dict:
  row = {c: '' for c in COLUMNS}
  row.update(name=name, cell=config.model.cell, hidden_size=config.model.hidden_size,
             num_layers=config.model.num_layers, learning_rate=config.train.learning_rate,
             seed=config.seed,
             train_fraction=config.data.get('train_fraction', 1.0), status=status,
             error=error.replace('\n', ' ')[:300])
  results_path = os.path.join(workdir, 'results.json')
  if status == 'done' and os.path.exists(results_path):
    with open(results_path) as f:
      r = json.load(f)
    last = {}
    for line in open(os.path.join(workdir, 'metrics.jsonl')):
      try:
        last = json.loads(line)
      except ValueError:  # A damaged line: the last good one stands.
        continue
    row.update(num_params=r['num_params'], best_step=r['best_step'],
               best_val_loss=r['best_val_loss'], best_val_bpc=r['best_val_bpc'],
               test_loss=r.get('test_loss', ''), wall_s=r['elapsed_s'],
               final_step=r['final_step'], stopped=r.get('stopped', ''),
               train_time_s=r.get('train_time_s', ''),
               train_chars_seen=r['final_step'] * config.train.batch_size * config.train.seq_length,
               train_split_chars=r.get('train_split_chars', ''),
               final_train_loss=last.get('train_loss', ''), final_val_loss=last.get('val_loss', ''))
  return row


def write_csv(path: str, rows: Sequence[dict]) -> None:
  tmp = path + '.tmp'
  with open(tmp, 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=COLUMNS)
    w.writeheader()
    w.writerows(rows)
  os.replace(tmp, path)


def read_csv(path: str) -> list[dict]:
  with open(path) as f:
    return list(csv.DictReader(f))


def run_sweep(base: ml_collections.ConfigDict, grid: Sequence[dict], sweep_dir: str,
              trials_at_once: int = 1, executor: ml_collections.ConfigDict | None = None,
              more: Callable[[list[dict]], Sequence[dict]] | None = None) -> list[dict]:
  """Runs every trial of `grid` (a list of {dotted.field: value}) not yet finished.

  Args:
    executor: where trials run (see `executor_config`); None: local processes.
    more: given the rows finished so far, the trials to add (those already in the
      grid are ignored). Local processes ask it at the start and after each trial,
      so that a trial planned from finished ones starts on the first free slot; other
      executors do not (their caller asks between sweeps).

  Returns:
    The rows of results.csv, in grid order.
  """
  if trials_at_once < 1:
    raise UserError('trials_at_once must be >= 1')
  executor = executor or executor_config()
  if executor.kind not in ('local', 'slurm', 'submitit_local'):
    raise UserError(f'unknown sweep.executor.kind {executor.kind!r}; use local, slurm or'
                    ' submitit_local')
  os.makedirs(os.path.join(sweep_dir, 'trials'), exist_ok=True)
  trials, rows, pending = [], {}, []

  def add(overrides_list):
    known = {n for n, _, _ in trials}
    for overrides in overrides_list:
      name = trial_name(overrides)
      if name in known:
        continue
      known.add(name)
      config, workdir = apply_overrides(base, overrides), os.path.join(sweep_dir, 'trials', name)
      trials.append((name, config, workdir))
      row = _row(name, config, workdir, 'done') if run_files.finished(workdir, config) else None
      if row is not None:
        logging.info('Trial %s finished before; skipping', name)
        rows[name] = row
      else:
        pending.append((name, config, workdir))

  add(grid)
  csv_path = os.path.join(sweep_dir, 'results.csv')

  def flush():
    write_csv(csv_path, [rows[n] for n, _, _ in trials if n in rows])

  def ask_more():
    if more is None or executor.kind != 'local':
      return
    # Until it plans nothing new: trials that finished before (a resumed sweep) let it
    # plan further at once, so results.csv holds every finished trial from the start.
    while True:
      before = len(trials)
      add(more([rows[n] for n, _, _ in trials if n in rows]))
      if len(trials) == before:
        break

  ask_more()
  flush()
  if executor.kind != 'local':
    _run_submitit(pending, rows, flush, trials_at_once, executor, sweep_dir)
    return [rows[n] for n, _, _ in trials]
  ctx = multiprocessing.get_context('spawn')  # A fresh JAX per trial.
  if executor.get('devices'):  # One trial per listed accelerator at a time.
    trials_at_once = len(executor.devices.split(','))
  free_slots = list(range(trials_at_once))
  running = {}  # sentinel -> (process, connection, name, config, workdir, slot)
  previous = None
  if threading.current_thread() is threading.main_thread():
    # SIGTERM to the sweep (a cluster's preemption) stops it as Ctrl-C does: each
    # running trial is sent SIGTERM, saves a checkpoint and exits; none is orphaned.
    previous = signal.signal(signal.SIGTERM, _terminate)
  try:
    while pending or running:
      while pending and len(running) < trials_at_once:
        name, config, workdir = pending.pop(0)
        slot = free_slots.pop(0)
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_trial_worker, name=f'trial {name}',
                           args=(config.to_json(), workdir, child, trial_env(executor, slot)))
        proc.start()
        child.close()
        running[proc.sentinel] = (proc, parent, name, config, workdir, slot)
      for sentinel in multiprocessing.connection.wait(list(running)):
        proc, conn, name, config, workdir, slot = running.pop(sentinel)
        free_slots.append(slot)
        proc.join()
        try:
          status, cause = conn.recv() if conn.poll() else ('failed', _exit_cause(proc.exitcode))
        except EOFError:  # Died without a word: a signal or a crash.
          status, cause = 'failed', _exit_cause(proc.exitcode)
        conn.close()
        rows[name] = _row(name, config, workdir, status, cause)
        if status == 'done':
          logging.info('Trial %s done: best val %.4f', name, float(rows[name]['best_val_loss']))
        else:
          logging.warning('Trial %s failed: %s', name, cause)
        ask_more()
        flush()
  finally:
    for proc, *_ in running.values():  # Interrupted: each trial saves and stops.
      proc.terminate()
    for proc, *_ in running.values():
      proc.join()
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)
  return [rows[n] for n, _, _ in trials]


# ----------------------------------------------------------------------------
# Fits


def power_law(x, l_inf, a, alpha):
  return l_inf + a * np.power(x, -alpha)


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> dict:
  """Least-squares fit of L(x) = L_inf + a * x^(-alpha), with a, alpha, L_inf >= 0.

  x is rescaled by its geometric mean for conditioning; `a` is reported for the
  original x. Needs at least 3 points.
  """
  from scipy.optimize import curve_fit
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if len(x) < 3:
    raise ValueError('a power-law fit needs at least 3 points')
  scale = float(np.exp(np.mean(np.log(x))))
  xs = x / scale
  p0 = (max(min(y) * 0.8, 0.0), max(y) - min(y) + 1e-3, 0.5)
  (l_inf, a_s, alpha), _ = curve_fit(power_law, xs, y, p0=p0,
                                     bounds=([0, 0, 0], [np.inf, np.inf, 5]), maxfev=20000)
  pred = power_law(xs, l_inf, a_s, alpha)
  return {'L_inf': float(l_inf), 'a': float(a_s * scale ** alpha), 'alpha': float(alpha),
          'rmse': float(np.sqrt(np.mean((pred - y) ** 2))), 'n': int(len(x))}


# ----------------------------------------------------------------------------
# Report


def write_report(sweep_dir: str, title: str, x_key: str, x_label: str,
                 command: str = '') -> str:
  """Fits, figures and report.md from results.csv. Returns the report path."""
  from rnnlm.studies import plots
  rows = read_csv(os.path.join(sweep_dir, 'results.csv'))
  done = [r for r in rows if r['status'] == 'done']
  fits = {}
  if len(done) >= 3:
    xs = [float(r[x_key]) for r in done]
    try:
      fits['val_loss'] = fit_power_law(xs, [float(r['best_val_loss']) for r in done])
    except (RuntimeError, ValueError) as e:
      fits['val_loss'] = {'error': str(e)}
  with open(os.path.join(sweep_dir, 'fits.json'), 'w') as f:
    json.dump(fits, f, indent=2)
  os.makedirs(os.path.join(sweep_dir, 'plots'), exist_ok=True)
  figures = plots.sweep_figures(done, x_key, x_label, fits.get('val_loss'),
                                os.path.join(sweep_dir, 'plots'))
  cols = ('name', 'num_params', 'train_split_chars', 'train_chars_seen', 'best_val_loss',
          'best_val_bpc', 'final_train_loss', 'final_val_loss', 'wall_s', 'status')
  lines = [f'# {title}', '', *report.made_by(command)]
  lines += report.table(cols, [[r[c] for c in cols] for r in rows])
  failed = [r for r in rows if r['status'] == 'failed']
  if failed:
    lines += ['', 'Failed trials:', ''] + [f'- {r["name"]}: {r["error"]}' for r in failed]
  fit = fits.get('val_loss')
  if fit and 'error' not in fit:
    lines += ['', f'Saturating power law fitted to best val loss against {x_label}:',
              f'L(x) = {fit["L_inf"]:.3f} + {fit["a"]:.4g} * x^(-{fit["alpha"]:.3f})'
              f'  (rmse {fit["rmse"]:.4f} nats over {fit["n"]} trials)']
  lines.append('')
  lines += [f'![{os.path.basename(p)}](plots/{os.path.basename(p)})' for p in figures]
  return report.write(os.path.join(sweep_dir, 'report.md'), lines)


def axis_setting(axis: str, value) -> dict:
  """{field: value} for one value of an axis. An axis named 'a.x+b.y' sets several
  fields together, each value a tuple with one entry per field, so that a search can
  pair values that only make sense together (a cell and the precision it has kernels
  for)."""
  fields = axis.split('+')
  if len(fields) == 1:
    return {axis: value}
  if not isinstance(value, (tuple, list)) or len(value) != len(fields):
    raise UserError(f'sweep axis {axis} sets {len(fields)} fields, so each value must be a'
                    f' tuple of {len(fields)}; got {value!r}')
  return dict(zip(fields, value))


def axis_label(axis: str) -> str:
  """'model.cell+model.compute_dtype' -> 'cell+compute_dtype'."""
  return '+'.join(f.split('.')[-1] for f in axis.split('+'))


def _centre_value(axis: str, centre: dict):
  fields = axis.split('+')
  return centre[axis] if len(fields) == 1 else tuple(centre[f] for f in fields)


def grid_product(axes: dict) -> list[dict]:
  """Every combination of the values of `axes` ({dotted.field: values}), the first
  field varying slowest."""
  import itertools
  grid = []
  for values in itertools.product(*axes.values()):
    trial = {}
    for axis, v in zip(axes, values):
      trial.update(axis_setting(axis, v))
    grid.append(trial)
  return grid


def coordinate_grid(axes: dict, centre: dict) -> list[dict]:
  """The centre, then each other value of each axis with the other fields at the centre
  (one factor at a time): 1 + sum(len(values) - 1) trials instead of their product.
  Every trial sets every field, so that its name says all of it."""
  missing = [f for a in axes for f in a.split('+') if f not in centre]
  if missing:
    raise UserError(f'sweep.centre has no value for {", ".join(missing)}; give every axis'
                    ' a centre value')
  grid = [dict(centre)]
  for axis, values in axes.items():
    grid += [{**centre, **axis_setting(axis, v)} for v in values
             if v != _centre_value(axis, centre)]
  return grid


def best_combination(axes: dict, centre: dict, rows: Sequence[dict]) -> dict | None:
  """The centre with each axis at the value whose one-factor trial (or the centre)
  had the lowest validation loss; None until the centre and every one-factor trial
  have finished."""
  loss = {r['name']: float(r['best_val_loss']) for r in rows if r['status'] == 'done'}
  if trial_name(centre) not in loss:
    return None
  best = dict(centre)
  for axis, values in axes.items():
    # The centre's value too.
    candidates = tuple(dict.fromkeys((_centre_value(axis, centre), *values)))
    trials = {v: trial_name({**centre, **axis_setting(axis, v)}) for v in candidates}
    if any(name not in loss for name in trials.values()):
      return None
    best.update(axis_setting(axis, min(candidates, key=lambda v: loss[trials[v]])))
  return best


def write_coordinate_report(sweep_dir: str, axes: dict, centre: dict) -> list[str]:
  """Lines for a one-factor-at-a-time search: each change's effect on the loss."""
  rows = read_csv(os.path.join(sweep_dir, 'results.csv'))
  loss = {r['name']: float(r['best_val_loss']) for r in rows if r['status'] == 'done'}
  centre_loss = loss.get(trial_name(centre))
  short = lambda fields: ', '.join(f'{k.split(".")[-1]}={v}' for k, v in fields.items())
  lines = ['', '## One change at a time', '',
           'Validation loss of each trial that changes one field from the centre'
           f' ({short(centre)}: {report.fmt(centre_loss)}), and the change against the'
           ' centre (negative: better):', '']
  table = []
  for axis, values in axes.items():
    for v in values:
      if v == _centre_value(axis, centre):
        continue
      l = loss.get(trial_name({**centre, **axis_setting(axis, v)}))
      table.append([axis_label(axis), ', '.join(map(str, v)) if '+' in axis else v, l,
                    None if l is None or centre_loss is None else round(l - centre_loss, 4)])
  lines += report.table(['field', 'value', 'val loss', 'vs centre'], table)
  combo = best_combination(axes, centre, rows)
  if combo is not None:
    changed = {k: v for k, v in combo.items() if v != centre[k]}
    l = loss.get(trial_name(combo))
    lines += ['', 'Each field at its best value: ' + (short(changed) or 'the centre itself')
              + (f': {report.fmt(l)}.' if l is not None else ' (not yet run).')]
  return lines


def write_grid_report(sweep_dir: str, title: str, fields: Sequence[str], command: str = '',
                      extra: Sequence[str] = ()) -> str:
  """A grid search's report: every trial, best validation loss first."""
  rows = read_csv(os.path.join(sweep_dir, 'results.csv'))
  done = sorted((r for r in rows if r['status'] == 'done'), key=lambda r: float(r['best_val_loss']))
  names = [axis_label(f) for f in fields]
  lines = [f'# {title}', '', *report.made_by(command),
           f'{len(done)} of {len(rows)} trials finished; best validation loss first.', '']
  cols = ('num_params', 'best_val_loss', 'best_step', 'final_step', 'stopped', 'train_time_s')
  lines += report.table(['trial', *cols], [[r['name'], *(r[c] for c in cols)] for r in done])
  failed = [r for r in rows if r['status'] == 'failed']
  if failed:
    lines += ['', 'Failed trials:', ''] + [f'- {r["name"]}: {r["error"]}' for r in failed]
  lines += ['', f'Fields searched: {", ".join(names)}.', *extra]
  return report.write(os.path.join(sweep_dir, 'report.md'), lines)


def _ordered_axes(axes: dict, order) -> dict:
  """The axes in the order named (':' for '.'), or as given when no order is."""
  if not order:
    return axes
  order = [k.replace(':', '.') for k in order]
  if sorted(order) != sorted(axes):
    raise UserError(f'sweep.order names {", ".join(order)} but the axes are'
                    f' {", ".join(axes)}; name each axis once')
  return {k: axes[k] for k in order}


def search_axes(sweep_config: ml_collections.ConfigDict) -> tuple[dict, dict]:
  """A search's ({field: values} in the order its trials run, {field: centre value})
  from a config's `sweep` (':' stands for '.'; a joint axis's values as tuples)."""
  axes = {k.replace(':', '.'): tuple(tuple(x) if '+' in k and isinstance(x, list) else x
                                     for x in v) for k, v in sweep_config.axes.items()}
  centre = {k.replace(':', '.'): v for k, v in (sweep_config.get('centre') or {}).items()}
  return _ordered_axes(axes, sweep_config.get('order')), centre


def run_from_config(config: ml_collections.ConfigDict, sweep_dir: str, command: str = '') -> str:
  """Runs the sweep a sweep config describes, then writes its report.

  A sweep config (configs/sweeps/) holds `base`, the training config every
  trial starts from, and `sweep`: either the `field` swept over the values `grid`
  (with the x axis `x_key`, `x_label` of the report's figure and fit), or `axes`,
  {field: values}, searched over every combination (or a fixed random `sample` of
  them) or, with `search='coordinate'` and a `centre` {field: value}, one field
  at a time from the centre and then every field at its best value together (an
  axis 'a:x+b:y' sets two fields together, its values pairs); `order`, the axes'
  names in the order their trials run (a ConfigDict sorts its keys); and
  `trials_at_once`, `executor` and the report's `title`.
  """
  if config.sweep.get('axes'):
    axes, centre = search_axes(config.sweep)
    search = config.sweep.get('search', 'grid')
    if search == 'coordinate':
      grid = coordinate_grid(axes, centre)
      run = lambda g: run_sweep(config.base, g, sweep_dir, config.sweep.trials_at_once,
                                config.sweep.get('executor'))
      combo = best_combination(axes, centre, run(grid))
      if combo is not None and combo not in grid:
        run(grid + [combo])  # The whole list, so that results.csv keeps every row.
      return write_grid_report(sweep_dir, config.sweep.title, list(axes), command,
                               write_coordinate_report(sweep_dir, axes, centre))
    if search != 'grid':
      raise UserError(f'unknown sweep.search {search!r}; use grid or coordinate')
    grid = grid_product(axes)
    if config.sweep.get('sample', 0) and config.sweep.sample < len(grid):
      # A fixed random subset (seeded, so a rerun resumes the same trials).
      pick = np.random.default_rng(0).choice(len(grid), config.sweep.sample, replace=False)
      grid = [grid[i] for i in sorted(pick)]
    run_sweep(config.base, grid, sweep_dir, config.sweep.trials_at_once,
              config.sweep.get('executor'))
    return write_grid_report(sweep_dir, config.sweep.title, list(axes), command)
  grid = [{config.sweep.field: v} for v in config.sweep.grid]
  run_sweep(config.base, grid, sweep_dir, config.sweep.trials_at_once,
            config.sweep.get('executor'))
  return write_report(sweep_dir, config.sweep.title, config.sweep.x_key, config.sweep.x_label,
                      command)
