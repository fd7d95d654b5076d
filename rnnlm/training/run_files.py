"""What a run writes beside its checkpoints (on the chief process only)."""

from __future__ import annotations

import json
import os

import ml_collections
from tensorboardX import SummaryWriter

from rnnlm import data


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
    if resumed_step is not None:
      self._truncate_metrics(resumed_step)
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
