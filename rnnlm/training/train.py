"""`train_and_evaluate`: a run from config to results.json, resumable.

It reads top to bottom: set up (config, data, model and optimizer, the workdir's
checkpoint), loop (one jitted step per window, then the units of `periodic`), finish
(the best checkpoint on the test split). The steps are in `steps`, the schedules and
optimizer in `optim`, a time budget's re-timing in `budget`, the files in `run_files`.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import ml_collections
from absl import logging
from tqdm import tqdm

from rnnlm import config as config_lib
from rnnlm import data
from rnnlm.data import corpora
from rnnlm.errors import UserError
from rnnlm.model import count_params
from rnnlm.training import budget as budget_lib
from rnnlm.training import checkpoint as checkpoint_lib
from rnnlm.training import finetune
from rnnlm.training import optim
from rnnlm.training import parallel
from rnnlm.training import periodic
from rnnlm.training import run_files
from rnnlm.training import steps as steps_lib
from rnnlm.training import storage
from rnnlm.training.run_files import RunFiles

# ----------------------------------------------------------------------------
# The data and the workdir


@dataclasses.dataclass
class Splits:
  """The corpus's vocabulary and its train / val / test batch streams."""
  vocab: data.Vocab
  train: data.BatchStream
  val: data.BatchStream
  test: data.BatchStream | None  # None when the test split is shorter than one window.
  train_chars: int
  corpus_sha256: str = ''  # Of the whole corpus's text, as prepared (before the splits).


def build_data(config: ml_collections.ConfigDict) -> Splits:
  """Reads (and once prepares) the corpus and splits it into batch streams."""
  corpus = corpora.get_corpus(config.data, verify=True)  # A run's first use: checksummed.
  train_tokens, val_tokens, test_tokens = corpora.splits(corpus, config.data)
  # A data-scale study trains on a prefix of the train split; val/test stay the same.
  train_tokens = train_tokens[:max(2, int(round(len(train_tokens) * config.data.train_fraction)))]
  t, e = config.train, config.eval

  def stream(name, tokens, batch_size):
    try:
      return data.BatchStream(tokens, batch_size, t.seq_length)
    except UserError as err:
      raise UserError(f'{name} split: {err}') from None

  test = None
  if len(test_tokens) > e.batch_size * t.seq_length:
    test = stream('test', test_tokens, e.batch_size)
  unknown = corpus.vocab.unknown_chars(e.sample_prime) if e.sample_prime else None
  if unknown:
    raise UserError(f'eval.sample_prime has characters not in the corpus: {unknown}; change it')
  return Splits(corpus.vocab, stream('train', train_tokens, t.batch_size),
                stream('validation', val_tokens, e.batch_size), test, len(train_tokens),
                corpus.meta.get('text_sha256', ''))


def check_vocab_compatible(workdir: str, vocab: data.Vocab) -> None:
  path = os.path.join(workdir, 'vocab.json')
  try:
    saved = data.Vocab.load(path) if os.path.exists(path) else None
  except (OSError, ValueError, KeyError, TypeError):
    logging.warning('%s is damaged; written again from the corpus', path)
    return
  if saved is not None and saved != vocab:
    raise UserError(f'the corpus vocabulary differs from {path} (the run in that workdir'
                    ' used other data); use a new --workdir or the original data')


# ----------------------------------------------------------------------------
# The run


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after_step: int | None = None, devices=None,
                       eval_callback=None) -> dict:
  """Trains a CharLM as `config` says, in `workdir`, resuming if it holds a run.

  Args:
    config: see configs/default.py.
    workdir: output directory (`RunFiles`, and checkpoints/).
    stop_after_step: stop (without a final checkpoint) once this step is done, as
      a preemption would; used to test exact resume.
    devices: the devices to use (default: all).
    eval_callback: called on the chief after each evaluation as
      `eval_callback(step, model, vocab, record)` (e.g. to measure samples).

  The run ends at the step cap, by early stopping or when its time budget is spent
  (`periodic.Stopping`); its best checkpoint is then evaluated on the test split.

  Returns:
    The final results dict (also written to results.json), or the last metrics
    if `stop_after_step` stopped the run.

  Raises:
    UserError: a bad config, bad data, or a workdir that holds another run.
    Diverged: a non-finite loss or gradient (nothing after it is saved).
    Interrupted: SIGTERM or SIGINT, after a checkpoint at the current step.
  """
  # Set up: the config, the data, the model and optimizer, the workdir.
  config = config_lib.validate(config)
  workdir = os.path.abspath(workdir)
  config_lib.check_resume_compatible(workdir, config)
  if config.init_from:
    finetune.check_source(config)
  splits = build_data(config)
  check_vocab_compatible(workdir, splits.vocab)
  mesh = parallel.make_mesh(devices)
  t, e = config.train, config.eval
  parallel.note_padding(t.batch_size, mesh)
  parallel.note_padding(e.batch_size, mesh, 'eval.batch_size')
  is_chief = jax.process_index() == 0
  steps_per_epoch = len(splits.train)
  num_steps = t.num_steps or int(t.num_epochs * steps_per_epoch)
  ckpt = checkpoint_lib.Checkpointer(workdir, keep_latest=config.checkpoint.keep_latest)
  fresh = ckpt.latest_step() is None
  plan, schedule_steps, schedule = _schedule(config, splits, mesh, workdir, num_steps,
                                             is_chief, fresh)
  init_record = {}
  model, graphdef, optimizer, state = steps_lib.create_train_state(
      config, len(splits.vocab), steps_per_epoch, schedule_steps, mesh,
      _transplant(config, splits, init_record) if config.init_from and fresh else None,
      schedule)
  train_fn, eval_fn = steps_lib.compile_steps(graphdef, optimizer, mesh)
  eval_carry = parallel.shard_carry(
      model.initial_carry(parallel.padded_rows(e.batch_size, mesh)), mesh)
  logging.info('Model %s: %d parameters; %d steps (%.2f epochs of %d windows), %d devices',
               'transformer' if config.model.arch == 'transformer' else config.model.cell,
               count_params(model), num_steps, num_steps / steps_per_epoch,
               steps_per_epoch, mesh.devices.size)
  files = RunFiles(workdir, is_chief)
  run = periodic.Run(
      config=config, workdir=workdir, splits=splits, mesh=mesh, ckpt=ckpt, files=files,
      graphdef=graphdef, eval_fn=eval_fn, eval_carry=eval_carry, train_fn=train_fn,
      schedule=schedule, state=state, steps_per_epoch=steps_per_epoch, num_steps=num_steps,
      is_chief=is_chief, stopping=periodic.Stopping.from_config(t, num_steps, steps_per_epoch))
  bar = tqdm(total=num_steps, disable=None if is_chief else True, unit='step',
             dynamic_ncols=True)
  with storage.reported(workdir, bar.close, files.close, ckpt.close):
    if not fresh:
      _restore_latest(run)
    files.start(config, splits.vocab, resumed_step=run.step or None)
    if init_record and is_chief:
      finetune.write_record(workdir, init_record)
      logging.info('Started from %s (step %d); characters new to it: %r', config.init_from,
                   init_record['source_step'], ''.join(init_record['new_chars']))
    bar.update(run.step)
    run.started, start_step = time.time(), run.step
    run.interval = periodic.Interval(t.batch_size * t.seq_length, start_step)

    # The loop: one jitted step per window, then each unit in turn.
    with periodic.StopSignals() as signals:
      units = [u for u in (periodic.SelfSignal.from_env(),
                           budget_lib.Retimer(plan, start_step, num_steps) if plan else None,
                           run.interval, periodic.Progress(run, bar),
                           periodic.Evaluation(run, eval_callback), periodic.SignalStop(signals))
               if u is not None]
      run.clock.resume()
      while run.stopping.reason(run.step, run.clock.seconds()) is None:
        batch = steps_lib.device_batch(splits.train.next(), mesh)
        run.state, metrics = run.train_fn(run.state, batch)
        run.step += 1
        for unit in units:
          unit(run, metrics, batch)
        if stop_after_step is not None and run.step >= stop_after_step:
          return run.record
      run.clock.pause()

    # Finish: the best checkpoint on the test split, results.json.
    ckpt.wait()
    return finish(run, num_params=count_params(model))


def _schedule(config, splits: Splits, mesh, workdir: str, num_steps: int, is_chief: bool,
              fresh: bool):
  """(budget plan or None, the steps the schedule spans, the schedule): over the step
  cap, or over the steps a time budget allows (`budget`)."""
  t = config.train
  if t.schedule_from_budget and t.time_budget_minutes:
    plan = budget_lib.make_plan(config, splits, mesh, workdir, num_steps, is_chief, fresh)
    return plan, plan['schedule_steps'], budget_lib.budget_schedule(t, len(splits.train), plan)
  return None, num_steps, optim.make_schedule(t, len(splits.train), num_steps)


def _transplant(config, splits: Splits, record: dict):
  """The `init_params` of a fine-tuning run: the source run's best parameters mapped
  onto this vocabulary (`finetune.transplant`); what was done goes in `record`."""
  def transplant(params):
    params, done = finetune.transplant(params, splits.vocab, config.init_from)
    record.update(done)
    return params
  return transplant


def _restore_latest(run: periodic.Run) -> None:
  """Puts the workdir's latest intact checkpoint into `run` (a damaged one is set aside,
  `checkpoint.restore_intact`): state, data position, step, clocks and the stopping
  rule's record."""
  _, (run.state, meta) = run.ckpt.restore_intact('latest', lambda step: steps_lib.restore(
      run.ckpt, step, run.state, run.config.train.batch_size, run.mesh))
  run.splits.train.load_state_dict(meta['data'])
  run.step, run.elapsed_before = int(meta['step']), float(meta['elapsed_s'])
  # Runs saved before training time and early stopping were recorded count all time.
  run.clock = periodic.Clock(float(meta.get('train_time_s', run.elapsed_before)))
  run.stopping.load_state_dict(meta.get('stopping', {}))
  logging.info('Resumed %s from step %d', run.workdir, run.step)


def finish(run: periodic.Run, *, num_params: int) -> dict:
  """Evaluates the best checkpoint on the test split; writes results.json."""
  t = run.config.train
  # The best step may have been saved on another number of devices.
  best, (best_state, meta) = run.ckpt.restore_intact('best', lambda step: steps_lib.restore(
      run.ckpt, step, run.state, t.batch_size, run.mesh))
  results = {'best_step': best, 'best_val_loss': meta['val_loss'],
             'best_val_bpc': meta['val_loss'] / steps_lib.LN2, 'num_params': num_params,
             'final_step': int(run.state['step']),
             'stopped': run.stopping.reason(run.step, run.clock.seconds()),
             'early_stopping_patience': t.early_stopping_patience,
             'time_budget_minutes': t.time_budget_minutes,
             'elapsed_s': round(run.elapsed(), 2), 'train_time_s': round(run.clock.seconds(), 2),
             'train_split_chars': run.splits.train_chars,
             'corpus_sha256': run.splits.corpus_sha256, 'machine': run_files.machine()}
  if run.splits.test is not None:
    test = steps_lib.evaluate(run.eval_fn, best_state['params'], run.splits.test,
                              run.eval_carry, run.mesh)
    results.update(test_loss=test['loss'], test_bpc=test['bpc'])
  run.files.results(results)
  logging.info('Results: %s', results)
  return results
