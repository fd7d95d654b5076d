"""The PyTorch peers run on rnnlm's data and write rnnlm-shaped results (needs torch)."""

import itertools
import json
import math
import os

import numpy as np
import pytest

torch = pytest.importorskip('torch')

from configs import tiny  # noqa: E402
from rnnlm import data  # noqa: E402
from rnnlm.bench import peers  # noqa: E402
from rnnlm.data import corpora  # noqa: E402
from rnnlm.training import periodic  # noqa: E402


@pytest.mark.parametrize('length,context', [(500, 128), (129, 128), (1000, 7), (300, 1)])
def test_eval_windows_score_every_character_once(length, context):
  starts, first = peers.eval_windows(length, context)
  scored = np.zeros(length, int)
  for s, j in zip(starts, first):
    assert 0 <= s and s + context <= length - 1  # Inputs and targets inside the text.
    scored[s + 1 + j:s + 1 + context] += 1
    if s > 0:  # After the first window, at least half a context precedes each target.
      assert j >= context - max(1, context // 2) or s == starts[-1]
  assert scored[0] == 0 and np.all(scored[1:] == 1)


@pytest.mark.parametrize('kind', ['char_rnn', 'transformer'])
def test_peer_trains_for_its_budget_and_records(tmp_path, kind, monkeypatch):
  # Each step takes 1/32 s of training time whatever the machine (a step reads the clock
  # before and after): a 3 s budget is 96 steps.
  readings = itertools.count()
  monkeypatch.setattr(periodic, 'now', lambda: next(readings) / 32)
  config = tiny.get_config()
  wd = str(tmp_path / kind)
  r = peers.train_peer(kind, config.data, wd, minutes=0.05, hidden=32, layers=2, heads=2,
                       context=16, batch=4, seq=16, eval_every_minutes=0.02, marks=(0.01, 1))
  records = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  # Evaluated at the 0.6 s mark (step 20), 1.2 s after that (step 59), at the budget.
  assert [r['step'] for r in records] == [20, 59, 96]
  assert records[-1]['train_time_s'] == pytest.approx(3.0)
  vocab = len(data.Vocab.from_text(corpora.tiny_text()))
  assert records[0]['val_loss'] < math.log(vocab)  # Better than uniform after 20 steps ...
  assert records[-1]['val_loss'] < records[0]['val_loss'] - 0.05  # ... and better after 96.
  assert r['num_params'] > 0 and r['val_loss_at_0.01min'] is not None
  assert r['val_loss_at_1min'] is None  # Past the budget.
  assert json.load(open(os.path.join(wd, 'results.json')))['kind'] == kind
