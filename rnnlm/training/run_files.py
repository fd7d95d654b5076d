"""What a run writes beside its checkpoints (on the chief process only), and whether
those files say it has finished."""

from __future__ import annotations

import json
import math
import os
import platform

from absl import logging
import jax
import ml_collections
from tensorboardX import SummaryWriter

from rnnlm import data
from rnnlm.model import kernels


class RunFiles:
  """What a run writes beside its checkpoints (on the chief process only):
  config.json, vocab.json, metrics.jsonl (one line per evaluation), samples/,
  results.json and TensorBoard events (per-step training scalars too)."""

  def __init__(self, workdir: str, is_chief: bool):
    self.workdir = workdir
    self.is_chief = is_chief
    self.metrics_path = os.path.join(workdir, 'metrics.jsonl')
    self.tb = None
    if is_chief:
      self.tb = SummaryWriter(logdir=workdir)

  def start(self, config: ml_collections.ConfigDict, vocab: data.Vocab,
            resumed_step: int | None) -> None:
    if not self.is_chief:
      return
    # Resumed: the lines after its checkpoint go. Fresh: so do the lines of an earlier
    # run in this workdir, none of whose checkpoints is left (a trial run again).
    self._truncate_metrics(resumed_step if resumed_step is not None else -1)
    os.makedirs(os.path.join(self.workdir, 'samples'), exist_ok=True)
    data.atomic_write(os.path.join(self.workdir, 'config.json'), config.to_json(indent=2))
    vocab.save(os.path.join(self.workdir, 'vocab.json'))

  def _truncate_metrics(self, last_step: int) -> None:
    """Drops metric lines written after the checkpoint a run resumes from, and any
    line that is not a metrics record (cut short by a killed process, or damaged)."""
    if not os.path.exists(self.metrics_path):
      return
    kept = []
    with open(self.metrics_path, errors='replace') as f:
      for line in f:
        try:
          if json.loads(line)['step'] <= last_step:
            kept.append(line if line.endswith('\n') else line + '\n')
        except (ValueError, KeyError, TypeError):
          continue
    data.atomic_write(self.metrics_path, ''.join(kept))

  def scalars(self, step: int, values: dict, prefix: str = '') -> None:
    if self.tb is not None:
      for k, v in values.items():
        self.tb.add_scalar(prefix + k, v, step)
      self.tb.flush()

  def eval_record(self, record: dict) -> None:
    if self.is_chief:
      with open(self.metrics_path, 'a') as f:
        f.write(json.dumps(record) + '\n')
      self.scalars(record['step'], {k: v for k, v in record.items() if k != 'step'})

  def sample(self, step: int, text: str) -> None:
    if self.is_chief:
      data.atomic_write(os.path.join(self.workdir, 'samples', f'step_{step:06d}.txt'), text)

  def results(self, results: dict) -> None:
    if self.is_chief:
      data.atomic_write(os.path.join(self.workdir, 'results.json'), json.dumps(results, indent=2))

  def close(self) -> None:
    if self.tb is not None:
      self.tb.close()


def machine() -> dict:
  """Where a run finished, for results.json: the CPU's model name, its cores, JAX's
  backend and device kind, and the CPU kernels' instruction set (None: not loaded)."""
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')), cpu)
  except OSError:
    pass
  isa = kernels.loaded_instruction_set()
  return {'cpu': cpu, 'cores': os.cpu_count(), 'backend': jax.default_backend(),
          'device_kind': jax.devices()[0].device_kind, 'cpu_kernels': isa}


def finished(workdir: str, config=None) -> bool:
  """Whether a run's results.json is there and readable (a damaged one, cut short or
  garbage, is not: the run goes again, resuming from its checkpoints), and early
  stopping did not end it before `config`'s train.early_stopping_start_epoch (such a
  run, run again with `config`, resumes and goes on)."""
  path = os.path.join(workdir, 'results.json')
  if not os.path.exists(path):
    return False
  try:
    with open(path) as f:
      r = json.load(f)
    if not all(k in r for k in ('num_params', 'best_step', 'best_val_loss', 'final_step')):
      return False
  except (OSError, ValueError, TypeError):
    logging.warning('Run results %s are damaged; running it again', path)
    return False
  start = config.train.get('early_stopping_start_epoch', 0) if config is not None else 0
  if not start or r.get('stopped') != 'early_stopping':
    return True
  epoch = final_epoch(workdir, r)
  if epoch < start:
    logging.info('Run %s stopped early at epoch %.1f, before %g: resuming it',
                 os.path.basename(workdir), epoch, start)
  return epoch >= start


def final_epoch(workdir: str, results: dict) -> float:
  """The epoch of a finished run's last step, from its metrics.jsonl (inf if absent)."""
  epoch = math.inf
  try:
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      for line in f:
        rec = json.loads(line)
        if rec.get('step') == results['final_step'] and 'epoch' in rec:
          epoch = float(rec['epoch'])
  except (OSError, ValueError):
    pass
  return epoch
