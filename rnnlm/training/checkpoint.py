"""Orbax checkpoints of a training run: keep the latest few and the best by val loss.

A checkpoint (`<workdir>/checkpoints/<step>/`) holds two items:
  * `state`: parameters, optimizer state, step, RNG key and the carried hidden
    state (arrays, restored with their shardings);
  * `meta`: JSON with the data position, epoch, elapsed time and val metrics.
The config and vocabulary sit beside it in the workdir (`config.json`, `vocab.json`).
`load_model` restores a trained model for inference from the parameters alone.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from flax import nnx
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from rnnlm import config as config_lib
from rnnlm import data
from rnnlm.model import charlm as model_lib
from rnnlm.errors import UserError


def _val_loss(metrics: dict) -> float:
  return float(metrics['val_loss'])


class Checkpointer:
  """A thin wrapper over `ocp.CheckpointManager` with rnnlm's retention policy."""

  def __init__(self, workdir: str, keep_latest: int = 2, read_only: bool = False):
    directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    if read_only and not os.path.isdir(directory):
      raise UserError(f'no checkpoints in {workdir}; train first with'
                      f' experiments/train.py --workdir={workdir}')
    options = ocp.CheckpointManagerOptions(
        best_fn=_val_loss, best_mode='min',
        preservation_policy=pp.AnyPreservationPolicy([
            pp.LatestN(n=max(1, keep_latest)),
            pp.BestN(get_metric_fn=_val_loss, reverse=True, n=1,
                     keep_checkpoints_without_metrics=False),
        ]),
        read_only=read_only, create=not read_only)
    self.manager = ocp.CheckpointManager(directory, item_names=('state', 'meta'),
                                         options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def best_step(self) -> int | None:
    return self.manager.best_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def save(self, step: int, state: Any, meta: dict, val_loss: float | None) -> None:
    metrics = {'val_loss': float(val_loss)} if val_loss is not None else None
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        metrics=metrics, force=True)

  def restore(self, step: int, target: Any) -> tuple[Any, dict]:
    """Restores `step` into the structure, shapes and shardings of `target`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    except (ValueError, KeyError) as e:
      raise UserError(f'checkpoint {step} does not fit this model ({str(e)[:160]});'
                      ' use the config the run was trained with') from e
    return restored['state'], restored['meta']

  def restore_meta(self, step: int) -> dict:
    """The JSON metadata of `step` alone."""
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']

  def restore_params(self, step: int, target: Any) -> Any:
    """Restores only `state['params']` of `step` (no optimizer state is read)."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.PyTreeRestore(
              item={'params': abstract}, partial_restore=True,
              restore_args=ocp.checkpoint_utils.construct_restore_args({'params': abstract}))))
    except (ValueError, KeyError) as e:
      raise UserError(f'checkpoint {step} does not fit this model ({str(e)[:160]});'
                      ' use the config the run was trained with') from e
    return restored['state']['params']

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


def load_model(workdir: str, which: str = 'best', step: int | None = None
               ) -> tuple[model_lib.CharLM, data.Vocab, int]:
  """A trained model from a workdir, for sampling, evaluation or inspection.

  Reads the config, the vocabulary and the parameters of one checkpoint; no
  optimizer state.

  Args:
    workdir: a training run's directory.
    which: 'best' (lowest val loss) or 'latest'; ignored when `step` is given.
    step: a specific checkpointed step.

  Returns:
    (model, vocab, step).

  Raises:
    UserError: no run, no checkpoint, or no such step in the workdir.
  """
  config = config_lib.load(workdir)
  ckpt = Checkpointer(workdir, read_only=True)
  try:
    steps = ckpt.all_steps()
    vocab_path = os.path.join(workdir, 'vocab.json')
    if not steps or not os.path.exists(vocab_path):
      raise UserError(f'no checkpoint in {workdir}; train first (experiments/train.py'
                      f' --workdir={workdir})')
    if step is not None:
      if step not in steps:
        raise UserError(f'no checkpoint for step {step} in {workdir}; have {sorted(steps)}')
    elif which == 'best':
      step = ckpt.best_step() or ckpt.latest_step()
    elif which == 'latest':
      step = ckpt.latest_step()
    else:
      raise UserError(f'unknown checkpoint choice {which!r}; use best or latest')
    vocab = data.Vocab.load(vocab_path)
    graphdef, params = nnx.split(model_lib.from_config(config, len(vocab)))
    return nnx.merge(graphdef, ckpt.restore_params(step, params)), vocab, step
  finally:
    ckpt.close()
