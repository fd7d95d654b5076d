"""The PyTorch peers run on rnnlm's data and write rnnlm-shaped results (needs torch)."""

import json
import os

import pytest

torch = pytest.importorskip('torch')

from configs import tiny  # noqa: E402
from rnnlm import peers  # noqa: E402


@pytest.mark.parametrize('kind', ['char_rnn', 'transformer'])
def test_peer_trains_for_its_budget_and_records(tmp_path, kind):
  config = tiny.get_config()
  wd = str(tmp_path / kind)
  r = peers.train_peer(kind, config.data, wd, minutes=0.05, hidden=32, layers=2, heads=2,
                       context=16, batch=4, seq=16, eval_every_minutes=0.02, marks=(0.01, 1))
  records = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  assert len(records) >= 2 and records[-1]['train_time_s'] >= 3.0  # 0.05 min of training.
  assert records[-1]['val_loss'] < records[0]['val_loss'] + 0.5
  assert r['num_params'] > 0 and r['val_loss_at_0.01min'] is not None
  assert r['val_loss_at_1min'] is None  # Past the budget.
  assert json.load(open(os.path.join(wd, 'results.json')))['kind'] == kind
