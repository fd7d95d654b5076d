"""A workdir written by rnnlm 0.2.0 (tests/training/fixtures/tiny_workdir: configs/tiny.py with
16 units, 20 steps, checkpoints at 10 and 20) restores, evaluates, samples and resumes
with today's code. The expected numbers were computed by that version on that workdir
(tests/training/fixtures/tiny_workdir_expected.json)."""

import json
import os
import shutil

import pytest

from rnnlm.training import checkpoint
from rnnlm.training import evaluation
from rnnlm.training import sample
from rnnlm.training import train
from rnnlm import config as config_lib

_FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')


@pytest.fixture
def old_workdir(tmp_path):
  wd = str(tmp_path / 'old')
  shutil.copytree(os.path.join(_FIXTURES, 'tiny_workdir'), wd)
  return wd


def _expected():
  with open(os.path.join(_FIXTURES, 'tiny_workdir_expected.json')) as f:
    return json.load(f)


def test_old_workdir_restores_evaluates_and_samples(old_workdir):
  want = _expected()
  got = evaluation.evaluate(old_workdir, split='val')
  assert got['step'] == want['step']
  assert got['loss_nats'] == pytest.approx(want['val_split_loss_nats'], abs=1e-5)
  model, vocab, step = checkpoint.load_model(old_workdir, 'best')
  assert step == 20
  text = sample.generate_text(model, vocab, want['sample_prime'], length=want['sample_length'],
                              seed=want['sample_seed'],
                              temperature=want['sample_temperature'])[0]
  assert text == want['sample']


def test_old_workdir_resumes_from_its_last_checkpoint(old_workdir):
  config = config_lib.load(old_workdir)
  before = [json.loads(l) for l in open(os.path.join(old_workdir, 'metrics.jsonl'))]
  config.train.num_steps = 30
  results = train.train_and_evaluate(config, old_workdir)
  assert results['final_step'] == 30
  after = [json.loads(l) for l in open(os.path.join(old_workdir, 'metrics.jsonl'))]
  assert [m['step'] for m in after] == [10, 20, 30]
  assert after[:2] == before  # Steps 10 and 20 are the old run's, not retrained.
