"""Orbax checkpoints of a training run: keep the latest few and the best by val loss.

A checkpoint (`<workdir>/checkpoints/<step>/`) holds two items:
  * `state`: parameters, optimizer state, step, RNG key and the carried hidden
    state (arrays, restored with their shardings);
  * `meta`: JSON with the data position, epoch, elapsed time and val metrics;
and, once its save has finished, `rnnlm_manifest.json` (`integrity`): each file's
size and SHA-256, checked before the step is read. A step that fails the check, or
cannot be read, is damaged: `restore_intact` sets it aside (moved to
`<workdir>/checkpoints_set_aside/`, never deleted) with one warning and takes the
next one. The config and vocabulary sit beside the checkpoints (`config.json`,
`vocab.json`). `load_model` restores a trained model from the parameters alone.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from flax import nnx
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from rnnlm import config as config_lib
from rnnlm import data
from rnnlm.errors import UserError
from rnnlm.model import charlm as model_lib
from rnnlm.training import integrity

SET_ASIDE = 'checkpoints_set_aside'


class DamagedCheckpoint(Exception):
  """A checkpoint whose files are not what was written (or cannot be read)."""

  def __init__(self, step: int, reason: str):
    super().__init__(f'checkpoint {step}: {reason}')
    self.step, self.reason = step, reason


def _key_name(k) -> str:
  for attr in ('key', 'idx', 'name'):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def _param_shapes(params) -> dict:
  """{path of strings: shape} of a parameter tree."""
  flat, _ = jax.tree_util.tree_flatten_with_path(params)
  return {tuple(_key_name(k) for k in path): tuple(x.shape) for path, x in flat}


def _val_loss(metrics: dict) -> float:
  return float(metrics['val_loss'])


class Checkpointer:
  """A thin wrapper over `ocp.CheckpointManager` with rnnlm's retention policy."""

  def __init__(self, workdir: str, keep_latest: int = 2, read_only: bool = False):
    self.workdir = os.path.abspath(workdir)
    self.read_only = read_only
    self._unrecorded: set[int] = set()  # Saved by this process, manifest not yet written.
    self._checked: set[int] = set()  # Steps whose files matched their manifest.
    directory = self.directory = os.path.join(self.workdir, 'checkpoints')
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

  def step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def save(self, step: int, state: Any, meta: dict, val_loss: float | None) -> None:
    self.record_manifests()  # Of the steps before: done before this save can prune any.
    metrics = {'val_loss': float(val_loss)} if val_loss is not None else None
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        metrics=metrics, force=True)
    self._unrecorded.add(step)

  def record_manifests(self) -> None:
    """Waits for a save in flight, then writes the manifest of each step this process
    saved (the chief; one file system holds every process's files). Steps found on
    disk, which this process did not write, are never given one."""
    if not self._unrecorded:
      return
    self.manager.wait_until_finished()
    committed = set(self.manager.all_steps())
    for step in sorted(self._unrecorded):
      if step in committed and jax.process_index() == 0:
        integrity.write_manifest(self.step_dir(step))
    self._unrecorded.clear()

  def check(self, step: int) -> None:
    """Raises DamagedCheckpoint if `step`'s files differ from its manifest (checked once
    per step and Checkpointer)."""
    if step in self._checked:
      return
    reason = integrity.verify(self.step_dir(step))
    if reason:
      raise DamagedCheckpoint(step, reason)
    self._checked.add(step)

  def saved_param_shapes(self, step: int) -> dict | None:
    """{path: shape} of the parameters `step` holds, from its metadata alone (no array
    is read); None if the metadata cannot be read."""
    try:
      meta = ocp.PyTreeCheckpointHandler().metadata(
          epath.Path(self.step_dir(step)) / 'state')
      flat, _ = jax.tree_util.tree_flatten_with_path(getattr(meta, 'tree', meta))
    except Exception:  # pylint: disable=broad-except
      return None
    return {tuple(_key_name(k) for k in path[1:]): tuple(x.shape) for path, x in flat
            if path and _key_name(path[0]) == 'params' and hasattr(x, 'shape')}

  def _check_fits(self, step: int, params) -> None:
    """A one-line UserError, before any array is read, if the parameters `step` holds
    have other shapes than `params` (the config does not match the checkpoint)."""
    saved = self.saved_param_shapes(step)
    want = _param_shapes(params)
    if not saved or saved == want:
      return
    path = min(set(saved) ^ set(want) or {p for p in want if saved[p] != want[p]})
    raise UserError(
        f'checkpoint {step} does not fit this model (parameter {".".join(path)}: saved'
        f' {saved.get(path, "none")}, this model {want.get(path, "none")}); use the config'
        ' the run was trained with')

  def _read(self, step: int, args, target_state) -> dict:
    """An Orbax restore of `step`: its files checked against the manifest, and its
    parameters' shapes against `target_state`'s (a config that does not fit) before
    any array is read."""
    self.check(step)
    if target_state is not None and 'params' in target_state:
      self._check_fits(step, target_state['params'])
    try:
      return self.manager.restore(step, args=args)
    except Exception as e:  # pylint: disable=broad-except
      # The files matched their manifest (or it had none) and the parameters' shapes
      # fit: what stops Orbax reading them is damage.
      raise DamagedCheckpoint(step, f'it cannot be read ({str(e)[:160]})') from e

  def restore(self, step: int, target: Any) -> tuple[Any, dict]:
    """Restores `step` into the structure, shapes and shardings of `target`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    restored = self._read(step, ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()), abstract)
    return restored['state'], restored['meta']

  def restore_meta(self, step: int) -> dict:
    """The JSON metadata of `step` alone."""
    return self._read(step, ocp.args.Composite(meta=ocp.args.JsonRestore()), None)['meta']

  def restore_params(self, step: int, target: Any) -> Any:
    """Restores only `state['params']` of `step` (no optimizer state is read)."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    restored = self._read(step, ocp.args.Composite(
        state=ocp.args.PyTreeRestore(
            item={'params': abstract}, partial_restore=True,
            restore_args=ocp.checkpoint_utils.construct_restore_args({'params': abstract}))),
        {'params': abstract})
    return restored['state']['params']

  def set_aside(self, damaged: DamagedCheckpoint) -> str:
    """Moves a damaged step out of checkpoints/ (so that it no longer counts among the
    kept ones) into checkpoints_set_aside/, logging one warning; returns where."""
    dest_root = os.path.join(self.workdir, SET_ASIDE)
    os.makedirs(dest_root, exist_ok=True)
    dest, n = os.path.join(dest_root, str(damaged.step)), 1
    while os.path.exists(dest):
      n += 1
      dest = os.path.join(dest_root, f'{damaged.step}.{n}')
    if jax.process_index() == 0:
      shutil.move(self.step_dir(damaged.step), dest)
    logging.warning('Checkpoint %d of %s is damaged: %s. Set aside in %s; using the next'
                    ' intact one.', damaged.step, self.workdir, damaged.reason, dest)
    self.manager.reload()
    return dest

  def restore_intact(self, which: str, restore: Callable[[int], Any]) -> tuple[int, Any]:
    """`restore(step)` of the newest ('latest') or lowest-loss ('best') step that is
    intact: each damaged one met on the way is set aside (`set_aside`).

    Raises:
      UserError: no intact checkpoint is left (naming the workdir and what to do).
    """
    set_aside = []
    while True:
      step = self.best_step() if which == 'best' else None
      step = step if step is not None else self.latest_step()
      if step is None:
        break
      try:
        return step, restore(step)
      except DamagedCheckpoint as e:
        set_aside.append(e.step)
        self.set_aside(e)
    raise UserError(
        f'no intact checkpoint in {self.workdir}' + (
            f' (damaged: {", ".join(map(str, set_aside))}, set aside in {SET_ASIDE}/)'
            if set_aside else '') +
        '; start again in a new --workdir, or from another run with --config.init_from=DIR')

  def wait(self) -> None:
    self.manager.wait_until_finished()
    self.record_manifests()

  def close(self) -> None:
    try:
      self.record_manifests()
    finally:
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
    if not steps:
      raise UserError(f'no checkpoint in {workdir}; train first (experiments/train.py'
                      f' --workdir={workdir})')
    if which not in ('best', 'latest'):
      raise UserError(f'unknown checkpoint choice {which!r}; use best or latest')
    if step is not None and step not in steps:
      raise UserError(f'no checkpoint for step {step} in {workdir}; have {sorted(steps)}')
    vocab = _vocab(workdir, config)
    graphdef, params = nnx.split(model_lib.from_config(config, len(vocab)))
    if step is not None:  # The step asked for, or a one-line error: no other one.
      try:
        restored = ckpt.restore_params(step, params)
      except DamagedCheckpoint as e:
        raise UserError(f'{e} in {workdir}; ask for another step, or best or latest'
                        ' (which skip damaged checkpoints)') from None
    else:
      step, restored = ckpt.restore_intact(which, lambda s: ckpt.restore_params(s, params))
    return nnx.merge(graphdef, restored), vocab, step
  finally:
    ckpt.close()


def _vocab(workdir: str, config) -> data.Vocab:
  """The run's vocab.json; if it is missing or damaged, the vocabulary of the corpus
  its config names (the same characters: a vocabulary is its corpus's sorted set),
  written back with a warning."""
  path = os.path.join(workdir, 'vocab.json')
  try:
    return data.Vocab.load(path)
  except (OSError, ValueError, KeyError, TypeError) as e:
    why = 'missing' if isinstance(e, FileNotFoundError) else f'damaged ({type(e).__name__})'
  from rnnlm.data import corpora
  try:
    vocab = corpora.get_corpus(config.data).vocab
  except UserError as err:
    raise UserError(f'{path} is {why}, and the corpus it came from cannot be read to'
                    f' rebuild it: {err}') from None
  logging.warning('%s is %s; rebuilt from the corpus the run trained on', path, why)
  if jax.process_index() == 0:
    data.atomic_write(path, vocab.to_json())
  return vocab
