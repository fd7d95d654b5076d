"""The 2015 paper side by side: findings read from result folders built by hand."""

import json
import os

from rnnlm.studies import paper_2015
from rnnlm.studies import sweep


def _sweep_dir(root, losses, seed_loss=None, finished=True, folder='paper_warpeace',
               budget=1000):
  """A Table 1 sweep folder: one budget, every (cell, depth) at three rates, the middle
  one best at `losses[(cell, layers)]` (test loss; validation 0.01 above it);
  `finished`: the sweep's own mark that all its trials (rates and seeds) are done."""
  d = os.path.join(root, folder)
  os.makedirs(d)
  rows, budgets = [], {}
  for (cell, layers), loss in losses.items():
    for lr, extra in ((0.002, 0.0), (0.004, 0.3), (0.001, 0.2)):
      name = f'{cell}-{layers}-{lr}'
      rows.append({'name': name, 'cell': cell, 'num_layers': layers, 'hidden_size': 50,
                   'learning_rate': lr, 'seed': 0, 'status': 'done',
                   'best_val_loss': loss + 0.01 + extra, 'test_loss': loss + extra})
      budgets[name] = budget
  if seed_loss is not None:
    rows.append(dict(rows[0], name='rnn-1-seed1', seed=1, test_loss=seed_loss))
    budgets['rnn-1-seed1'] = budget
  sweep.write_csv(os.path.join(d, 'results.csv'), rows)
  with open(os.path.join(d, 'budgets.json'), 'w') as f:
    json.dump(budgets, f)
  if finished:
    with open(os.path.join(d, 'finished.json'), 'w') as f:
      json.dump({'trials': len(budgets)}, f)


def _by_finding(rows, setting_word):
  return {r[0]: r for r in rows if setting_word in r[4]}


def test_table1_findings_from_a_sweep_folder(tmp_path):
  losses = {('rnn', l): 2.0 - 0.1 * l for l in (1, 2, 3)}
  losses.update({(c, l): 1.5 - 0.1 * min(l, 2) for c in ('lstm', 'gru') for l in (1, 2, 3)})
  _sweep_dir(str(tmp_path), losses, seed_loss=1.9 + 0.02)  # Seed spread 0.02.
  table, noise, budgets = paper_2015.table1(str(tmp_path / 'paper_warpeace'))
  assert budgets == [1000] and abs(noise - 0.02) < 1e-9
  assert table[('lstm', 2, 1000)] == 1.3  # The better rate's test loss.
  rows = _by_finding(paper_2015.side_by_side(str(tmp_path)), 'War and Peace, 1,000')
  assert rows['LSTM and GRU are far better than the vanilla RNN'][3] == 'held'
  assert rows['2 layers are better than 1'][3] == 'held'
  # 3 layers tie 2 for the gated cells and beat them for the RNN: mixed.
  assert rows['a third layer gives mixed results'][3] == 'held (mixed)'
  assert 'seed spread 0.020' in rows['2 layers are better than 1'][4]


def test_table1_layout_puts_both_corpora_side_by_side(tmp_path):
  assert paper_2015.table1_layout(str(tmp_path)) is None
  wp = {(c, l): 1.4 + 0.01 * l for c in ('rnn', 'lstm', 'gru') for l in (1, 2, 3)}
  wp[('gru', 2)] = 1.2344
  _sweep_dir(str(tmp_path), wp)
  _sweep_dir(str(tmp_path), {('rnn', 1): 2.3, ('lstm', 3): 2.1}, finished=False,
             folder='paper_linux', budget=50_801)
  header, rows = paper_2015.table1_layout(str(tmp_path))
  assert header == ['model', 'War and Peace, 1,000', 'Linux, 50,801 (running)']
  by_model = {r[0]: r[1:] for r in rows}
  assert len(rows) == 9
  assert by_model['GRU, 2 layers'] == ['1.234', '-']  # Not run on Linux: a dash.
  assert by_model['RNN, 1 layer'] == ['1.410', '2.300']
  assert by_model['LSTM, 3 layers'] == ['1.430', '2.100']
  assert '## Table 1' in open(paper_2015.write(str(tmp_path), str(tmp_path / 'out'))).read()


def test_a_model_whose_rates_still_run_is_marked_so_far(tmp_path):
  losses = {(c, l): 1.5 for c in ('rnn', 'lstm', 'gru') for l in (1, 2, 3)}
  _sweep_dir(str(tmp_path), losses, finished=False)
  d = tmp_path / 'paper_warpeace'
  budgets = json.loads((d / 'budgets.json').read_text())
  running = sweep.trial_name({'model.cell': 'gru', 'model.num_layers': 2,
                              'model.hidden_size': 50, 'train.learning_rate': 0.008})
  budgets[running] = 1000  # Planned, not finished: the 2-layer GRU's rate may change.
  (d / 'budgets.json').write_text(json.dumps(budgets))
  _, rows = paper_2015.table1_layout(str(tmp_path))
  by_model = {r[0]: r[1:] for r in rows}
  assert by_model['GRU, 2 layers'] == ['1.500 (so far)']
  assert by_model['GRU, 1 layer'] == ['1.500']
  findings = _by_finding(paper_2015.side_by_side(str(tmp_path)), 'War and Peace, 1,000')
  assert findings['2 layers are better than 1'][3] == 'pending (8 of 9 models)'
  text = open(paper_2015.write(str(tmp_path), str(tmp_path / 'out'))).read()
  assert '1.500 (so far)' in text and '"(so far)": the best of the rates finished' in text


def test_only_a_budget_with_models_to_come_is_marked_running(tmp_path):
  losses = {(c, l): 1.5 for c in ('rnn', 'lstm', 'gru') for l in (1, 2, 3)}
  _sweep_dir(str(tmp_path), losses, finished=False)  # Every model of 1,000 settled.
  d = tmp_path / 'paper_warpeace'
  rows = sweep.read_csv(str(d / 'results.csv'))
  budgets = json.loads((d / 'budgets.json').read_text())
  for lr, loss in ((0.002, 1.4), (0.004, 1.3), (0.008, 1.35)):  # One model at 2,000.
    name = f'gru-2-{lr}-big'
    rows.append(dict(rows[0], name=name, cell='gru', num_layers=2, learning_rate=lr,
                     best_val_loss=loss + 0.01, test_loss=loss))
    budgets[name] = 2000
  sweep.write_csv(str(d / 'results.csv'), rows)
  (d / 'budgets.json').write_text(json.dumps(budgets))
  header, table = paper_2015.table1_layout(str(tmp_path))
  assert header == ['model', 'War and Peace, 1,000', 'War and Peace, 2,000 (running)']
  by_model = {r[0]: r[1:] for r in table}
  assert by_model['GRU, 2 layers'] == ['1.500', '1.300']
  assert by_model['GRU, 3 layers'] == ['1.500', '-']


def test_an_unfinished_table_is_pending(tmp_path):
  losses = {(c, l): 1.5 for c in ('rnn', 'lstm', 'gru') for l in (1, 2, 3)}
  del losses[('gru', 3)]
  _sweep_dir(str(tmp_path), losses)
  rows = _by_finding(paper_2015.side_by_side(str(tmp_path)), 'War and Peace, 1,000')
  assert rows['2 layers are better than 1'][3] == 'pending (8 of 9 models)'


def test_a_table_whose_sweep_has_not_finished_is_pending(tmp_path):
  # All nine models are in, but the sweep has not marked itself finished (rates beyond
  # an edge or seeds still to run): the verdict so far is shown, as pending.
  losses = {(c, l): 1.5 - 0.1 * (l > 1) for c in ('rnn', 'lstm', 'gru') for l in (1, 2, 3)}
  _sweep_dir(str(tmp_path), losses, finished=False)
  rows = _by_finding(paper_2015.side_by_side(str(tmp_path)), 'War and Peace, 1,000')
  assert rows['2 layers are better than 1'][3] == (
      'pending: held so far (rates or seeds still running)')


def test_brace_reach_by_hand():
  rows = [{'closer': '}', 'distance': '1-5', 'count': 100, 'mean_diff': 0.2},
          {'closer': '}', 'distance': '6-10', 'count': 5, 'mean_diff': -0.5},  # Too few.
          {'closer': '}', 'distance': '11-20', 'count': 100, 'mean_diff': 0.1},
          {'closer': ')', 'distance': '21-40', 'count': 100, 'mean_diff': -0.1},
          {'closer': '}', 'distance': '41-80', 'count': 100, 'mean_diff': 0.05},
          {'closer': '}', 'distance': '81-160', 'count': 100, 'mean_diff': -0.01},
          {'closer': '}', 'distance': '161-320', 'count': 100, 'mean_diff': 0.01}]
  reach, diffs = paper_2015.brace_reach(rows)
  assert reach == 80
  assert diffs == [('1-5', 0.2), ('11-20', 0.1), ('41-80', 0.05), ('81-160', -0.01),
                   ('161-320', 0.01)]
  assert paper_2015.brace_reach(rows[3:4])[0] is None


def _inside(model_loss, ngram_losses, errors=None):
  return {'model': {'cell': 'lstm', 'num_layers': 3, 'hidden_size': 256}, 'step': 10,
          'run_results': {'test_loss': model_loss}, 'ngram_test_loss': ngram_losses,
          'best_order': 1 + ngram_losses.index(min(ngram_losses)), 'brackets': [],
          'top_cells': {'line_position': [{'feature': 'line_position', 'kind': 'count',
                                           'layer': 1, 'name': 'c', 'unit': 17,
                                           'score': -0.8, 'strength': 0.8}]},
          'chance': {'line_position': 0.3}, 'saturation': {
              'layer 1 f': {'right_over_half': 0.05}, 'layer 2 f': {'right_over_half': 0.3},
              'layer 3 f': {'right_over_half': 0.2}, 'layer 1 i': {'right_over_half': 0.9}},
          'errors': errors or {'characters': 100, 'oracles': []}}


def _write_inside(root, name, n):
  os.makedirs(os.path.join(root, name))
  with open(os.path.join(root, name, 'inside.json'), 'w') as f:
    json.dump(n, f)


def test_inside_findings_from_inside_reports(tmp_path):
  grams = [3.0 - 0.1 * k for k in range(20)]  # The 20-gram is the best: 1.1.
  oracles = lambda ngram, rest: {'characters': 1000, 'errors': ngram + rest, 'oracles': [
      {'oracle': 'n-gram', 'errors': ngram}, {'oracle': 'the rest', 'errors': rest}]}
  _write_inside(str(tmp_path), 'paper_inside_linux', _inside(1.0, grams))
  _write_inside(str(tmp_path), 'paper_inside_warpeace', _inside(1.2, grams, oracles(50, 90)))
  _write_inside(str(tmp_path), 'paper_inside_warpeace_small',
                _inside(1.5, grams, oracles(80, 100)))
  rows = paper_2015.side_by_side(str(tmp_path))
  ngram = [r for r in rows if r[0] == 'the LSTM beats the 20-gram on test loss']
  linux, = [r for r in ngram if 'Linux' in r[4]]
  wp, = [r for r in ngram if 'War and Peace' in r[4]]
  assert linux[3] == 'held' and linux[2].startswith('1.000 against 1.100')
  assert wp[3] == 'not held'
  # As inside.json stores a cell score (0-based layer); the paper's threshold for a cell.
  line, = [r for r in rows if r[0] == 'a cell tracks line length' and 'Linux' in r[4]]
  assert line[2].startswith('L2.c[17]: strength 0.80, random-init best 0.30')
  assert line[3] == 'held'
  sat, = [r for r in rows if r[0].startswith('forget gates')]
  assert sat[3] == 'held' and 'layer 1: 5%' in sat[2]
  err, = [r for r in rows if r[0].startswith('a larger model')]
  # 30 fewer n-gram errors and 10 fewer of the rest per 1,000 characters.
  assert err[3] == 'held' and 'n-gram +3.0' in err[2] and 'the rest +1.0' in err[2]


def test_training_time_sums_the_finished_runs(tmp_path):
  for trial, seconds, cpu in (('a', 1800.0, 'AMD EPYC'), ('b', 5400.0, None),
                              ('c', 3600.0, 'AMD EPYC')):
    os.makedirs(tmp_path / 'paper_warpeace' / 'trials' / trial)
    with open(tmp_path / 'paper_warpeace' / 'trials' / trial / 'results.json', 'w') as f:
      json.dump({'train_time_s': seconds, **({'machine': {'cpu': cpu}} if cpu else {})}, f)
  os.makedirs(tmp_path / 'paper_warpeace' / 'trials' / 'running')  # No results.json yet.
  os.makedirs(tmp_path / 'paper_inside_linux')
  with open(tmp_path / 'paper_inside_linux' / 'results.json', 'w') as f:
    json.dump({'train_time_s': 9000.0}, f)
  assert paper_2015.training_time(str(tmp_path)) == [
      ['the 2 x 256 LSTM on the Linux kernel', 1, 2.5, 'not recorded (1)'],
      ['Table 1 on War and Peace', 3, 3.0, 'AMD EPYC (2), not recorded (1)']]
  text = open(paper_2015.write(str(tmp_path), str(tmp_path / 'out'))).read()
  assert '| Table 1 on War and Peace | 3 | 3 | AMD EPYC (2), not recorded (1) |' in text


def test_nothing_run_yet(tmp_path):
  rows = paper_2015.side_by_side(str(tmp_path))
  assert rows and all(r[2] == paper_2015.NOT_RUN and r[3] == '' for r in rows)
  path = paper_2015.write(str(tmp_path), str(tmp_path / 'out'))
  text = open(path).read()
  assert f'0 of {len(rows)} findings measured' in text and 'Training time' not in text


def test_a_finished_sweep_is_not_marked_running_for_a_missing_model(tmp_path):
  losses = {(c, l): 1.5 for c in ('rnn', 'lstm', 'gru') for l in (1, 2, 3)}
  del losses[('gru', 3)]  # E.g. every trial of it failed.
  _sweep_dir(str(tmp_path), losses, finished=True)
  header, table = paper_2015.table1_layout(str(tmp_path))
  assert header == ['model', 'War and Peace, 1,000']
  assert {r[0]: r[1:] for r in table}['GRU, 3 layers'] == ['-']
