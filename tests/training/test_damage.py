"""Damaged files on disk, as a matrix: each kind of file a workdir and a data cache
hold, and each kind of damage. A damaged checkpoint is set aside (never deleted) with
one warning and the run resumes from the next intact one, exactly as a run resumed
from that step; a damaged cache is rebuilt; what cannot be recovered is one line."""

import glob
import json
import os
import shutil

import jax
import numpy as np
import pytest
from flax import nnx

from configs import tiny
from rnnlm import config as config_lib
from rnnlm.data import corpora
from rnnlm.errors import UserError
from rnnlm.training import checkpoint, train


def _config(steps):
  c = tiny.get_config()
  c.train.num_steps, c.eval.eval_every, c.eval.sample_length = steps, 20, 0
  c.checkpoint.keep_latest = 2
  return c


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A run with checkpoints 40 and 60, and the same run resumed to 80 from 60, and from
  40 alone."""
  root = tmp_path_factory.mktemp('damage')
  base = str(root / 'base')
  train.train_and_evaluate(_config(60), base)
  ckpt = checkpoint.Checkpointer(base, read_only=True)
  assert sorted(ckpt.all_steps()) == [40, 60]
  ckpt.close()
  ref = str(root / 'from40')
  shutil.copytree(base, ref)
  shutil.rmtree(os.path.join(ref, 'checkpoints', '60'))
  _truncate_metrics(ref, 40)
  train.train_and_evaluate(_config(80), ref)
  from60 = str(root / 'from60')
  shutil.copytree(base, from60)
  train.train_and_evaluate(_config(80), from60)
  return base, ref, from60


def _truncate_metrics(wd, step):
  path = os.path.join(wd, 'metrics.jsonl')
  lines = [l for l in open(path) if json.loads(l)['step'] <= step]
  open(path, 'w').writelines(lines)


def _params(wd, step):
  ckpt = checkpoint.Checkpointer(wd, read_only=True)
  try:
    model, _, _ = checkpoint.load_model(wd, step=step)
  finally:
    ckpt.close()
  return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


def _damage(path, how):
  raw = open(path, 'rb').read()
  if how == 'cut_to_zero':
    open(path, 'wb').close()
  elif how == 'cut_short':
    open(path, 'wb').write(raw[:len(raw) // 2])
  elif how == 'bytes_changed':
    mid = len(raw) // 2
    open(path, 'wb').write(raw[:mid] + bytes(b ^ 0xFF for b in raw[mid:mid + 8]) + raw[mid + 8:])
  elif how == 'deleted':
    os.remove(path)
  elif how == 'garbage':
    open(path, 'wb').write(b'\x00garbage\xff' * max(1, len(raw) // 10))
  else:
    raise ValueError(how)


def _largest_array_file(step_dir):
  files = [f for f in glob.glob(os.path.join(step_dir, 'state', '**', 'd', '*'), recursive=True)
           if os.path.isfile(f)]
  return max(files, key=os.path.getsize)


CHECKPOINT_FILES = {
    'array_data': _largest_array_file,
    'array_metadata': lambda d: os.path.join(d, 'state', '_METADATA'),
    'ocdbt_manifest': lambda d: os.path.join(d, 'state', 'manifest.ocdbt'),
    'meta_json': lambda d: os.path.join(d, 'meta', 'metadata'),
    'checkpoint_metadata': lambda d: os.path.join(d, '_CHECKPOINT_METADATA'),
    'rnnlm_manifest': lambda d: os.path.join(d, 'rnnlm_manifest.json'),
}
DAMAGE = ('cut_to_zero', 'cut_short', 'bytes_changed', 'deleted', 'garbage')


def matrix(files, fast):
  """Every (file, damage) pair; those not in `fast` are in the slow set."""
  return [pytest.param(f, d, marks=() if (f, d) in fast else pytest.mark.slow)
          for f in sorted(files) for d in DAMAGE]


class _Warnings:
  def __init__(self):
    self.lines = []

  def __call__(self, msg, *args):
    self.lines.append(msg % args if args else msg)


@pytest.mark.parametrize('which,how', matrix(CHECKPOINT_FILES, {
    ('array_data', 'bytes_changed'), ('array_metadata', 'deleted'),
    ('rnnlm_manifest', 'deleted')}))
def test_a_damaged_latest_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(
    trained, tmp_path, monkeypatch, which, how):
  base, from40, from60 = trained
  wd = str(tmp_path / 'run')
  shutil.copytree(base, wd)
  damaged = CHECKPOINT_FILES[which](os.path.join(wd, 'checkpoints', '60'))
  _damage(damaged, how)
  warnings = _Warnings()
  monkeypatch.setattr(checkpoint.logging, 'warning', warnings)
  results = train.train_and_evaluate(_config(80), wd)
  # One warning naming the step and the file, and the step moved aside, not deleted.
  ours = [w for w in warnings.lines if ' is damaged: ' in w]
  assert results['final_step'] == 80
  if (which, how) == ('rnnlm_manifest', 'deleted'):
    # Nothing the checkpoint holds is damaged; without its manifest it is not checked
    # (as a checkpoint of an earlier version): resumed from 60, as if never stopped.
    assert not ours and not os.path.exists(os.path.join(wd, checkpoint.SET_ASIDE))
    reference = from60
  else:
    [warning] = ours
    assert warning.startswith('Checkpoint 60 of ')
    if which != 'rnnlm_manifest':
      assert os.path.relpath(damaged, os.path.join(wd, 'checkpoints', '60')) in warning
    assert os.path.isdir(os.path.join(wd, checkpoint.SET_ASIDE, '60'))
    reference = from40  # The same as the run resumed from 40 with no 60 at all.
  for x, y in zip(_params(wd, 80), _params(reference, 80)):
    np.testing.assert_array_equal(x, y)


def test_no_intact_checkpoint_is_one_line_naming_the_choices(trained, tmp_path):
  base = trained[0]
  wd = str(tmp_path / 'run')
  shutil.copytree(base, wd)
  for step in (40, 60):
    _damage(_largest_array_file(os.path.join(wd, 'checkpoints', str(step))), 'bytes_changed')
  with pytest.raises(UserError) as e:
    train.train_and_evaluate(_config(80), wd)
  msg = str(e.value)
  assert '\n' not in msg and wd in msg and '--workdir' in msg and 'init_from' in msg
  assert sorted(os.listdir(os.path.join(wd, checkpoint.SET_ASIDE))) == ['40', '60']


def test_sampling_and_evaluation_skip_a_damaged_best(trained, tmp_path):
  base = trained[0]
  wd = str(tmp_path / 'run')
  shutil.copytree(base, wd)
  best = checkpoint.Checkpointer(wd, read_only=True)
  step = best.best_step()
  best.close()
  _damage(_largest_array_file(os.path.join(wd, 'checkpoints', str(step))), 'cut_short')
  model, vocab, used = checkpoint.load_model(wd, 'best')
  assert used != step and used in (40, 60)
  with pytest.raises(UserError, match=f'checkpoint {used + 0}|no checkpoint for step {step}'):
    checkpoint.load_model(wd, step=step)  # Set aside: no longer offered.


def test_a_config_that_does_not_fit_is_not_called_damage(trained, tmp_path):
  base = trained[0]
  wd = str(tmp_path / 'run')
  shutil.copytree(base, wd)
  config = config_lib.load(wd)
  config.model.hidden_size = 24  # Edited by hand: the checkpoints no longer fit.
  with open(os.path.join(wd, 'config.json'), 'w') as f:
    f.write(config.to_json())
  with pytest.raises(UserError, match='does not fit this model'):
    checkpoint.load_model(wd, 'latest')
  assert not os.path.exists(os.path.join(wd, checkpoint.SET_ASIDE))


def test_every_kept_checkpoint_has_a_manifest(trained):
  base = trained[0]
  for step in (40, 60):
    assert os.path.exists(os.path.join(base, 'checkpoints', str(step), 'rnnlm_manifest.json'))


# ----------------------------------------------------------------------------
# The prepared corpus cache

CACHE_FILES = ('tokens.bin', 'meta.json', 'vocab.json')


@pytest.mark.parametrize('which,how', matrix(CACHE_FILES, {
    ('tokens.bin', 'cut_short'), ('meta.json', 'garbage'), ('vocab.json', 'deleted')}))
def test_a_damaged_cache_is_rebuilt_from_its_source(tmp_path, which, how):
  src = tmp_path / 'text.txt'
  src.write_text('abcdefgh\n' * 2000)
  data_config = tiny.get_config().data
  data_config.update(name='', path=str(src), cache_dir=str(tmp_path / 'cache'))
  first = corpora.get_corpus(data_config)
  want = np.array(first.tokens)
  [cache_dir] = glob.glob(str(tmp_path / 'cache' / 'local' / '*'))
  del first
  _damage(os.path.join(cache_dir, which), how)
  again = corpora.get_corpus(data_config, verify=True)
  np.testing.assert_array_equal(np.array(again.tokens), want)
  assert os.path.isdir(cache_dir + '.damaged')


def test_a_damaged_cache_whose_source_is_gone_is_one_line(tmp_path):
  src = tmp_path / 'text.txt'
  src.write_text('abcdefgh\n' * 2000)
  data_config = tiny.get_config().data
  data_config.update(name='', path=str(src), cache_dir=str(tmp_path / 'cache'))
  corpora.get_corpus(data_config)
  [cache_dir] = glob.glob(str(tmp_path / 'cache' / 'local' / '*'))
  _damage(os.path.join(cache_dir, 'tokens.bin'), 'cut_short')
  with pytest.raises(UserError) as e:  # The fingerprint needs the source: gone.
    os.remove(src)
    corpora.get_corpus(data_config, verify=True)
  assert '\n' not in str(e.value) and 'data path' in str(e.value)


def test_changed_bytes_in_the_cache_are_caught_by_the_checksum_only(tmp_path):
  data_config = tiny.get_config().data
  data_config.update(cache_dir=str(tmp_path / 'cache'))
  want = np.array(corpora.get_corpus(data_config).tokens)
  _damage(str(tmp_path / 'cache' / 'tiny' / 'tokens.bin'), 'bytes_changed')
  # The size is right: a plain load does not look at the bytes; a run's first use does.
  assert not np.array_equal(np.array(corpora.get_corpus(data_config).tokens), want)
  np.testing.assert_array_equal(
      np.array(corpora.get_corpus(data_config, verify=True).tokens), want)


# ----------------------------------------------------------------------------
# The run files beside the checkpoints

RUN_FILES = ('config.json', 'vocab.json', 'metrics.jsonl')


@pytest.mark.parametrize('which,how', matrix(RUN_FILES, {
    ('metrics.jsonl', 'garbage'), ('config.json', 'cut_short')}))
def test_damaged_run_files_resume_from_the_latest_checkpoint(trained, tmp_path, which, how):
  """Resuming needs none of them: each is written again from the run (metrics.jsonl
  keeps its good lines up to the checkpoint), and the run equals one never damaged."""
  base, _, from60 = trained
  wd = str(tmp_path / 'run')
  shutil.copytree(base, wd)
  _damage(os.path.join(wd, which), how)
  assert train.train_and_evaluate(_config(80), wd)['final_step'] == 80
  for x, y in zip(_params(wd, 80), _params(from60, 80)):
    np.testing.assert_array_equal(x, y)
  assert json.load(open(os.path.join(wd, 'vocab.json'))) == json.load(
      open(os.path.join(from60, 'vocab.json')))
  assert config_lib.load(wd).to_dict() == config_lib.load(from60).to_dict()
  steps = [json.loads(l)['step'] for l in open(os.path.join(wd, 'metrics.jsonl'))]
  assert steps[-1] == 80 and steps == sorted(set(steps))


@pytest.mark.parametrize('how', ('deleted', 'garbage'))
def test_sampling_rebuilds_a_damaged_vocab_and_a_damaged_config_is_one_line(trained, tmp_path,
                                                                            how):
  base = trained[0]
  wd = str(tmp_path / 'run')
  shutil.copytree(base, wd)
  want = json.load(open(os.path.join(wd, 'vocab.json')))
  _damage(os.path.join(wd, 'vocab.json'), how)
  _, vocab, _ = checkpoint.load_model(wd, 'best')
  assert list(vocab.chars) == want['chars']
  assert json.load(open(os.path.join(wd, 'vocab.json'))) == want  # Written back.
  _damage(os.path.join(wd, 'config.json'), how)
  with pytest.raises(UserError) as e:
    checkpoint.load_model(wd, 'best')
  assert '\n' not in str(e.value) and 'config.json' in str(e.value)
