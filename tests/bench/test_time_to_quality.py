"""Loss against training minutes: hand-worked curves, both kinds of workdir, the report."""

import json
import os

import pytest

from rnnlm.bench import time_to_quality as ttq
from rnnlm.errors import UserError

# (minutes, loss): falls, then a worse evaluation at 12 minutes.
POINTS = [(2.5, 2.0), (5.2, 1.8), (10.0, 1.6), (12.0, 1.7), (15.1, 1.55)]


def test_loss_by_takes_the_first_evaluation_past_the_mark_and_the_best_so_far():
  assert ttq.loss_by(POINTS, 5) == 1.8       # The evaluation at 5.2 minutes.
  assert ttq.loss_by(POINTS, 11) == 1.6      # 12 minutes was worse: the best so far counts.
  assert ttq.loss_by(POINTS, 15) == 1.55
  assert ttq.loss_by(POINTS, 1) == 2.0       # Nothing before: the first evaluation.


def test_a_shorter_budget_has_no_loss_at_a_later_mark_but_an_early_stop_keeps_its_best():
  assert ttq.loss_by(POINTS, 30, budget_minutes=15.1) is None
  assert ttq.loss_by(POINTS, 30, budget_minutes=None) == 1.55   # Stopped by its step cap.
  assert ttq.loss_by(POINTS, 30, budget_minutes=45) == 1.55     # Stopped by patience.


def test_first_reaching():
  assert ttq.first_reaching(POINTS, 1.6) == 10.0
  assert ttq.first_reaching(POINTS, 1.75) == 10.0
  assert ttq.first_reaching(POINTS, 1.5) is None


def _write(d, name, obj):
  with open(os.path.join(d, name), 'w') as f:
    f.write(obj if isinstance(obj, str) else json.dumps(obj))


def _rnnlm_run(d):
  os.makedirs(d)
  records = [{'step': 100 * (i + 1), 'val_loss': l, 'train_time_s': m * 60}
             for i, (m, l) in enumerate(POINTS)]
  _write(d, 'metrics.jsonl', '\n'.join(json.dumps(r) for r in records) + '\n')
  _write(d, 'results.json', {'num_params': 1234})
  _write(d, 'config.json', {'train': {'batch_size': 10, 'seq_length': 20,
                                      'time_budget_minutes': 15.0}})
  return d


def _peer_run(d):
  os.makedirs(d)
  _write(d, 'metrics.jsonl', json.dumps({'step': 9, 'val_loss': 1.9, 'train_time_s': 300.5})
         + '\n' + json.dumps({'step': 20, 'val_loss': 1.7, 'train_time_s': 1800.2}) + '\n')
  _write(d, 'results.json', {'kind': 'char_rnn', 'num_params': 99, 'chars_per_sec': 5000.0,
                             'train_time_s': 1800.2})
  return d


def test_load_both_kinds_of_run(tmp_path):
  r = ttq.load_run('mine', _rnnlm_run(str(tmp_path / 'a')))
  assert r.points == POINTS and r.num_params == 1234 and r.budget_minutes == 15.0
  # 500 steps of 10 x 20 characters in 15.1 minutes.
  assert r.chars_per_sec == pytest.approx(500 * 200 / (15.1 * 60))
  p = ttq.load_run('peer', _peer_run(str(tmp_path / 'b')))
  assert p.chars_per_sec == 5000.0 and p.budget_minutes == pytest.approx(30.0033, abs=1e-3)


def test_report_table_and_figure(tmp_path):
  runs = [ttq.load_run('mine', _rnnlm_run(str(tmp_path / 'a'))),
          ttq.load_run('peer', _peer_run(str(tmp_path / 'b')))]
  path = ttq.write_report(runs, str(tmp_path / 'out'), targets=(1.75,))
  text = open(path).read()
  # mine: 1.8 by 5 min, 1.55 by 15, nothing at 30 (15-minute budget); best 1.55 at 15.1.
  assert '| mine | 1,234 | 0.1 | 1.8 | 1.55 | - | 1.55 | 15.1 |' in text
  # peer: 1.9 by 5 (evaluated at 5.008 min), 1.7 by 15 and by 30.
  assert '| peer | 99 | 5 | 1.9 | 1.7 | 1.7 | 1.7 | 30 |' in text
  assert '| mine | 10 |' in text and '| peer | 30 |' in text  # Minutes to 1.75.
  assert os.path.getsize(tmp_path / 'out' / 'loss_vs_minutes.png') > 1000
  assert json.load(open(tmp_path / 'out' / 'curves.json'))['peer']['num_params'] == 99


def test_a_workdir_without_metrics_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match='no metrics.jsonl'):
    ttq.load_run('x', str(tmp_path))
