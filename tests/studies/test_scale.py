import json
import os
import re

import ml_collections
import numpy as np
import pytest

from configs import tiny
from configs.sweeps import paper_table
from rnnlm.studies import architectures as architectures_study
from rnnlm.studies import joint
from rnnlm.studies import paper_table as paper_study
from rnnlm.studies import scale_runs
from rnnlm.studies import scaling
from rnnlm.studies import sweep
from rnnlm.errors import UserError


@pytest.mark.parametrize('cell,gates', [('rnn', 1), ('lstm', 4), ('gru', 3)])
def test_num_params_matches_a_hand_count(cell, gates):
  v, h = 11, 7
  # Per layer: W_x [in, G h], W_h [h, G h], b [G h] (GRU: and b_hn [h]); head [h, v] + [v].
  per_layer = lambda i: gates * h * (i + h + 1) + (h if cell == 'gru' else 0)
  want = per_layer(v) + per_layer(h) + per_layer(h) + h * v + v
  assert scaling.num_params(cell, 3, h, v) == want
  # With an embedding of width 5: its table [v, 5], and the first layer reads 5 wide.
  assert scaling.num_params(cell, 1, h, v, embed_dim=5) == v * 5 + per_layer(5) + h * v + v


def test_hidden_for_budget_is_the_closest_count():
  for cell in ('rnn', 'lstm', 'gru'):
    for layers in (1, 2, 3):
      for budget in (5_000, 50_000, 200_000):
        h = scaling.hidden_for_budget(cell, layers, 65, budget)
        gap = abs(scaling.num_params(cell, layers, h, 65) - budget)
        for other in (h - 1, h + 1):
          assert gap <= abs(scaling.num_params(cell, layers, other, 65) - budget)
        h16 = scaling.hidden_for_budget(cell, layers, 65, budget, multiple_of=16)
        assert h16 % 16 == 0 and abs(h16 - h) <= 16


def _tiny_paper_config():
  config = paper_table.get_config('cpu')
  config.base = tiny.get_config()
  config.base.train.num_steps = 4
  config.base.eval.eval_every = 2
  config.base.eval.sample_length = 0
  s = config.sweep
  s.cells, s.layers, s.budgets = ('rnn', 'lstm'), (1,), (3_000, 6_000)
  s.learning_rates, s.seed_budget, s.extra_seeds = (3e-3, 1e-2), 3_000, (1,)
  s.trials_at_once = 2
  return config


@pytest.mark.slow
def test_paper_table_runs_chooses_rates_and_reports(tmp_path):
  d = str(tmp_path / 'pt')
  path = paper_study.run_paper_table(_tiny_paper_config(), d, command='test')
  rows = sweep.read_csv(os.path.join(d, 'results.csv'))
  assert len(rows) == 2 * 1 * 2 * 2 + 2 and all(r['status'] == 'done' for r in rows)
  budgets = json.load(open(os.path.join(d, 'budgets.json')))
  # Each (cell, depth, budget) is trained at both rates; the table shows the one
  # with the lower validation loss, and the extra seed reuses that rate.
  for cell in ('rnn', 'lstm'):
    for layers in (1,):
      mine = [r for r in rows if r['cell'] == cell and int(r['num_layers']) == layers
              and budgets[r['name']] == 3_000]
      first = [r for r in mine if r['seed'] == '0']
      best = min(first, key=lambda r: float(r['best_val_loss']))
      [again] = [r for r in mine if r['seed'] == '1']
      assert again['learning_rate'] == best['learning_rate']
      assert again['hidden_size'] == best['hidden_size']
      text = open(path).read()
      name = {'rnn': 'RNN', 'lstm': 'LSTM'}[cell]
      line = next(l for l in text.splitlines()
                  if l.startswith(f'| {name}, {layers} layer'))
      # Three decimals, trailing zeros kept: 1.400 is not printed as 1.4.
      assert line.split('|')[2].strip() == f'{float(best["test_loss"]):.3f}'
  assert '## The findings of the paper, checked' in text and 'Spread over seeds' in text
  # Two rates per model: every chosen rate is the largest or the smallest tried.
  assert '0 of 4 chosen rates lie inside the rates their model was trained at' in text
  assert os.path.exists(os.path.join(d, 'plots', 'loss_vs_params_by_cell.png'))
  # Every trial done, seeds included: the sweep marks itself finished.
  assert paper_study.finished(d) and 'provisional' not in text


@pytest.mark.slow
def test_paper_table_centres_the_larger_budgets_rates_and_finishes(tmp_path):
  d = str(tmp_path / 'pt')
  config = _tiny_paper_config()
  config.sweep.centre_rates, config.sweep.extra_seeds = True, ()
  paper_study.run_paper_table(config, d, command='test')
  rows = sweep.read_csv(os.path.join(d, 'results.csv'))
  budgets = json.load(open(os.path.join(d, 'budgets.json')))
  ratio = 1e-2 / 3e-3
  for cell in ('rnn', 'lstm'):
    small = [r for r in rows if r['cell'] == cell and budgets[r['name']] == 3_000]
    large = [r for r in rows if r['cell'] == cell and budgets[r['name']] == 6_000]
    best = float(min(small, key=lambda r: float(r['best_val_loss']))['learning_rate'])
    assert sorted(float(r['learning_rate']) for r in large) == pytest.approx(
        [best / ratio, best, best * ratio], rel=1e-5)
    assert len({r['hidden_size'] for r in large}) == 1
    assert int(large[0]['hidden_size']) > int(small[0]['hidden_size'])
  assert len(rows) == 2 * 2 + 2 * 3 and all(r['status'] == 'done' for r in rows)
  assert paper_study.finished(d)


def test_finished_trials_off_the_grid_count_towards_the_choice(tmp_path):
  # Grid rates 1e-3, 2e-3 (ratio 2, two extra steps either way); finished trials in
  # the sweep folder at 5e-4 (one step below), 8e-3 (two above), 1.6e-2 (three above:
  # out of the bracket rule's reach), 5e-4 at another hidden size (no model of the
  # grid) and 4e-3 without results.json (not finished).
  s = ml_collections.ConfigDict({'learning_rates': (1e-3, 2e-3),
                                 'max_extra_rates': 2})
  model = {'model.cell': 'lstm', 'model.num_layers': 2, 'model.hidden_size': 40}
  grid = [(5_000, dict(model, **{'train.learning_rate': lr})) for lr in (1e-3, 2e-3)]
  def make(overrides, finished=True):
    d = tmp_path / 'trials' / sweep.trial_name(overrides)
    d.mkdir(parents=True)
    if finished:
      (d / 'results.json').write_text('{}')
  for lr in (5e-4, 8e-3, 1.6e-2):
    make(dict(model, **{'train.learning_rate': lr}))
  make(dict(model, **{'model.hidden_size': 41, 'train.learning_rate': 5e-4}))
  make(dict(model, **{'train.learning_rate': 4e-3}), finished=False)
  got = paper_study.finished_off_grid(grid, s, str(tmp_path))
  assert [(b, o['train.learning_rate']) for b, o in got] == [(5_000, 5e-4), (5_000, 8e-3)]
  assert all(o['model.hidden_size'] == 40 for _, o in got)
  # A grid trial already finished is not adopted twice.
  make(dict(model, **{'train.learning_rate': 1e-3}))
  assert len(paper_study.finished_off_grid(grid, s, str(tmp_path))) == 2


def test_paper_table_runs_finished_off_grid_trials_with_its_grid(tmp_path, monkeypatch):
  # run_paper_table hands the sweep its grid plus the finished off-grid trials.
  config = _tiny_paper_config()
  d = str(tmp_path / 'pt')
  s = config.sweep
  grid = paper_study.paper_grid(s, scale_runs.vocab_size(config.base))
  _, model = grid[0]
  low = dict(model, **{'train.learning_rate': 3e-3 / (1e-2 / 3e-3)})
  os.makedirs(os.path.join(d, 'trials', sweep.trial_name(low)))
  open(os.path.join(d, 'trials', sweep.trial_name(low), 'results.json'), 'w').write('{}')
  seen = []
  class Stop(Exception):
    pass
  def fake_run_sweep(base, trials, sweep_dir, *args, **kwargs):
    seen.extend(sweep.trial_name(o) for o in trials)
    raise Stop
  monkeypatch.setattr(paper_study.sweep, 'run_sweep', fake_run_sweep)
  with pytest.raises(Stop):
    paper_study.run_paper_table(config, d, command='test')
  assert sorted(seen) == sorted([sweep.trial_name(o) for _, o in grid]
                                + [sweep.trial_name(low)])


def test_how_a_trial_stopped_by_hand():
  row = lambda stopped, best, last: {'stopped': stopped, 'best_step': best, 'final_step': last}
  assert scale_runs.still_improving(row('num_steps', '40', '40'))
  assert not scale_runs.still_improving(row('num_steps', '20', '40'))
  assert scale_runs.creeping(row('early_stopping', '40', '40'))
  assert not scale_runs.creeping(row('early_stopping', '20', '40'))  # Got worse after 20.
  assert not scale_runs.creeping(row('num_steps', '40', '40'))


def test_findings_on_a_hand_made_table():
  t = {}
  for b, scale in ((1, 1.0), (2, 0.9)):
    for l, depth in ((1, 0.0), (2, -0.1), (3, -0.1)):
      t[('rnn', l, b)] = 2.0 * scale + depth
      t[('lstm', l, b)] = 1.5 * scale + depth
      t[('gru', l, b)] = 1.52 * scale + depth
  t[('lstm', 3, 2)] -= 0.05  # One third layer helps; the others tie.
  f = {claim: (verdict, evidence) for claim, verdict, evidence in
       paper_study.findings(t, ('rnn', 'lstm', 'gru'), (1, 2, 3), (1, 2), noise=0.01)}
  assert f['LSTM and GRU are far better than the vanilla RNN'][0] == 'held'
  assert f['2 layers are better than 1'][0] == 'held'
  assert f['a third layer gives mixed results'][0] == 'held (mixed)'
  assert 'better in 1 of 6' in f['a third layer gives mixed results'][1]
  assert f['LSTM and GRU are close to each other'][0] == 'held'
  flat = {k: v + (0.1 if k[1] == 3 else 0.0) for k, v in t.items() if k[1] != 3 or k[2] != 2}
  flat.update({(c, 3, 2): t[(c, 2, 2)] + 0.005 for c in ('rnn', 'lstm', 'gru')})
  f = {c: (v, e) for c, v, e in paper_study.findings(flat, ('rnn', 'lstm', 'gru'), (1, 2, 3),
                                                     (1, 2), noise=0.01)}
  # Budget 1: a third layer worse by 0.1 in all three cells; budget 2: ties (0.005).
  assert f['a third layer gives mixed results'] == (
      'held (mixed)', '3 layers better in 0 of 6 (cell, budget) pairs, worse in 3, within'
      ' seed spread in 3')
  ties = {k: v for k, v in flat.items() if k[2] == 2}
  f = {c: v for c, v, _ in paper_study.findings(ties, ('rnn', 'lstm', 'gru'), (1, 2, 3), (2,),
                                                noise=0.01)}
  assert f['a third layer gives mixed results'] == 'held (all within seed spread)'
  t[('gru', 1, 1)] = 2.5  # GRU worse than the RNN once.
  f = {c: v for c, v, _ in paper_study.findings(t, ('rnn', 'lstm', 'gru'), (1, 2, 3), (1, 2),
                                                noise=0.01)}
  assert f['LSTM and GRU are far better than the vanilla RNN'] == 'not held'


def test_joint_law_fits_recover_known_constants():
  n = np.repeat(np.geomspace(3e4, 3e6, 5), 5)
  d = np.tile(np.geomspace(1e5, 1e7, 5), 5)
  truth = {'chinchilla': ([1.2, np.log(30.0), np.log(200.0), 0.35, 0.4],
                          {'E': 1.2, 'A': 30.0, 'B': 200.0, 'a': 0.35, 'b': 0.4}),
           'kaplan': ([np.log(2e4), np.log(5e3), 0.3, 0.25],
                      {'N_c': 2e4, 'D_c': 5e3, 'a_N': 0.3, 'a_D': 0.25})}
  for law, (x, named) in truth.items():
    loss = scaling.LAWS[law][0](x, n, d)
    fit = scaling.fit_law(law, n, d, loss)
    for k, v in named.items():
      assert fit['params'][k] == pytest.approx(v, rel=1e-3), (law, k)
    # With noise, the 95% bootstrap intervals hold the truth in most of 6 draws.
    covered = 0
    for seed in range(6):
      noisy = loss + np.random.default_rng(seed).normal(0, 0.003, len(loss))
      fit = scaling.fit_law(law, n, d, noisy)
      intervals = scaling.bootstrap(law, n, d, noisy, fit, resamples=40, seed=seed)
      keys = ('a', 'b', 'E') if law == 'chinchilla' else ('a_N', 'a_D')
      covered += all(intervals[k][0] <= named[k] <= intervals[k][1] for k in keys)
    assert covered >= 4, (law, covered)
  # Each law fits its own data better than the other's, out of sample.
  loss = scaling.chinchilla(truth['chinchilla'][0], n, d)
  both = scaling.fit_joint(n, d, loss, resamples=10)
  assert both['better'] == 'chinchilla' and both['chinchilla']['loo_rmse'] < 1e-6


def test_frontier_is_the_lower_envelope():
  pts = [(1, 3.0), (2, 2.5), (3, 2.7), (4, 2.0), (5, 2.1), (6, 1.9)]
  assert scaling.frontier(pts) == [(1, 3.0), (2, 2.5), (4, 2.0), (6, 1.9)]
  assert scaling.training_flops(1000, 50) == 6 * 1000 * 50


def test_still_improving_is_a_cap_stop_at_the_best_evaluation():
  row = lambda stopped, best, final: {'stopped': stopped, 'best_step': best, 'final_step': final}
  assert scale_runs.still_improving(row('num_steps', '400', '400'))
  assert not scale_runs.still_improving(row('num_steps', '200', '400'))
  assert not scale_runs.still_improving(row('early_stopping', '200', '800'))
  assert scale_runs.best_at_first_eval(row('early_stopping', '200', '800'), 200)
  assert not scale_runs.best_at_first_eval(row('early_stopping', '400', '1000'), 200)
  assert not scale_runs.best_at_first_eval(row('num_steps', '200', '200'), 200)  # Capped.


@pytest.mark.slow
def test_joint_grid_runs_and_reports_with_emergence_maps(tmp_path):
  from configs.sweeps import shakespeare_joint
  config = shakespeare_joint.get_config('cpu')
  config.base = tiny.get_config()
  config.base.train.num_steps = 6
  config.base.eval.eval_every = 2
  config.base.eval.sample_length = 0
  config.base.train.early_stopping_patience = 1
  config.sweep.hidden_sizes = (8, 16, 24)
  config.sweep.train_fractions = (0.25, 0.5, 1.0)
  config.sweep.trials_at_once = 2
  config.sweep.bootstrap = 5
  config.emergence.sample_length = 200
  config.emergence.reference_chars = 5000
  config.emergence.seeds = (0, 1)
  d = str(tmp_path / 'joint')
  path = joint.run_joint(config, d, command='test')
  text = open(path).read()
  rows = sweep.read_csv(os.path.join(d, 'results.csv'))
  assert len(rows) == 9 and all(r['status'] == 'done' for r in rows)
  for law in ('kaplan', 'chinchilla'):
    assert law in json.load(open(os.path.join(d, 'fits.json')))['main']
  # Trials the step cap stopped while still improving are starred in the table.
  capped = [r for r in rows if scale_runs.still_improving(r)]
  table = text.split('## Joint laws')[0]
  assert len(re.findall(r'\d\*', table)) == len(capped)
  first = [r for r in rows if scale_runs.best_at_first_eval(r, config.base.eval.eval_every)]
  assert len(re.findall(r'\d\*?\+', table)) == len(first)
  for r in capped:
    assert f"{float(r['best_val_loss']):.4g}*" in table
  assert ('were still improving when the step cap' in table) == bool(capped)
  assert '## Joint laws' in text and 'leave-one-out' in text and '## What emerges where' in text
  samples = sweep.read_csv(os.path.join(d, 'emergence_grid.csv'))
  assert len(samples) == 9 * 2
  # The map's cell is the mean over the two samples of that trial, with their range.
  one = [float(r['word_validity']) for r in samples if r['name'] == rows[0]['name']]
  summ = joint.emergence_summary(samples, 'word_validity')
  key = (int(rows[0]['num_params']), int(rows[0]['train_split_chars']))
  assert summ[key] == pytest.approx((np.mean(one), min(one), max(one)))
  for name in ('loss_vs_N_and_D', 'overfitting', 'compute_frontier', 'emergence_word_validity'):
    assert os.path.exists(os.path.join(d, 'plots', name + '.png')), name
  # Run again: nothing retrained, nothing resampled.
  mtime = os.path.getmtime(os.path.join(d, 'emergence_grid.csv'))
  joint.measure_grid(d, config.emergence, config.base.data)
  assert os.path.getmtime(os.path.join(d, 'emergence_grid.csv')) == mtime


def test_closest_size_against_a_hand_worked_count():
  # count(h) = h^2: for 1,000 in multiples of 4, 32 (1,024) beats 28 (784).
  assert scaling.closest_size(lambda h: h * h, 1000, 4) == 32
  assert scaling.closest_size(lambda h: h * h, 800, 4) == 28
  assert scaling.closest_size(lambda h: 10 * h, 5, 1) == 1


def test_config_params_counts_a_transformer_by_hand():
  # vocab V, width d, L blocks, context C, learned positions:
  # embed V d + pos 2C d + per block (2 LayerNorms 4d, qkv 3d^2+3d, proj d^2+d,
  # fc 4d^2+4d, out 4d^2+d) + final LayerNorm 2d + head d V + V.
  from configs.sweeps import architectures
  v, d, layers, c = 11, 16, 2, 8
  model = architectures.get_config('cpu').base.model
  model.update(arch='transformer', hidden_size=d, num_layers=layers, num_heads=4,
               context_length=c, positions='learned')
  block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
  assert scaling.config_params(model, v) == v * d + 2 * c * d + layers * block + 2 * d + d * v + v


@pytest.mark.slow
def test_architecture_comparison_runs_and_reports(tmp_path):
  from configs.sweeps import architectures
  config = architectures.get_config('cpu')
  config.base = tiny.get_config()
  config.base.train.num_steps = 6
  config.base.eval.eval_every = 2
  config.base.eval.sample_length = 0
  config.sweep.families = {'LSTM': {'model:cell': 'lstm'}, 'minGRU': {'model:cell': 'mingru'},
                           'transformer': {'model:arch': 'transformer', 'model:num_layers': 2,
                                           'model:num_heads': 2, 'model:context_length': 8}}
  config.sweep.budgets = (3000, 12000)
  config.sweep.hidden_multiple = 4
  config.sweep.minute_marks = (0.001, 100)
  config.sweep.trials_at_once = 2
  grid = architectures_study.architecture_grid(config)
  assert len(grid) == 6
  vocab = scale_runs.vocab_size(config.base)
  for family, budget, overrides in grid:
    model = sweep.apply_overrides(config.base, overrides).model
    n = scaling.config_params(model, vocab)
    # No width of the allowed multiple is closer to the budget.
    step = 4
    for other in (model.hidden_size - step, model.hidden_size + step):
      if other > 0:
        m2 = sweep.apply_overrides(config.base, {**overrides, 'model.hidden_size': other}).model
        assert abs(n - budget) <= abs(scaling.config_params(m2, vocab) - budget)
  d = str(tmp_path / 'arch')
  text = open(architectures_study.run_architectures(config, d, command='test')).read()
  rows = sweep.read_csv(os.path.join(d, 'results.csv'))
  assert len(rows) == 6 and all(r['status'] == 'done' for r in rows)
  for family in ('LSTM', 'minGRU', 'transformer'):
    assert f'| {family} |' in text
  assert "## Against training time" in text and "0.001 min" in text and "100 min" not in text
  assert 'Best model at each budget' in text
  for name in ('loss_vs_params', 'loss_vs_minutes'):
    assert os.path.exists(os.path.join(d, 'plots', name + '.png'))


def test_paper_presets_set_budgets_from_lstm_widths_and_train_as_the_paper():
  for preset, name, split in (('warpeace', 'warpeace', (0.8, 0.1, 0.1)),
                              ('linux_paper', 'linux', (0.9, 0.05, 0.05))):
    config = paper_table.get_config(preset)
    b, s = config.base, config.sweep
    assert b.data.name == name and tuple(b.data.split) == split
    assert (b.train.optimizer, b.train.batch_size, b.train.seq_length) == ('rmsprop', 100, 100)
    assert (b.train.num_epochs, b.train.lr_schedule, b.train.decay_after_epochs) == (
        100, 'exponential', 10)
    # Early stopping ends each run, with the cap far away: 5 epochs gaining <= 0.001.
    assert b.train.early_stopping_patience == 5 and b.train.early_stopping_min_delta == 0.001
    # And not before the rate has decayed for 10 epochs.
    assert b.train.early_stopping_start_epoch == b.train.decay_after_epochs + 10
    rates = sorted(s.learning_rates)  # The paper's 2e-3 inside the grid, not at an edge.
    assert rates[0] <= 2e-3 < rates[-1]  # The paper's rate is in the grid.
  # The kernel's files shuffled before the 6.2M cut, as the paper's were.
  linux = paper_table.get_config('linux_paper').base.data
  assert (linux.file_order, linux.max_bytes) == ('shuffled', 6_200_000)
  # Budgets: the parameter count of a 1-layer LSTM of 64 and 128 cells on the vocab,
  # counted by hand: 4 gates x H x (V inputs + H recurrent + 1 bias) + the H x V + V head.
  s = paper_table.get_config('warpeace').sweep
  vocab = 82
  grid = paper_study.paper_grid(s, vocab)
  hand = [4 * h * (vocab + h + 1) + h * vocab + vocab for h in (64, 128)]
  assert list(s.budgets) == hand == [42_962, 118_610]
  assert s.seed_budget == hand[0]
  assert {b for b, _ in grid} == set(hand)
  # The 1-layer LSTM at each budget is exactly 64 or 128 cells wide.
  widths = sorted(o['model.hidden_size'] for b, o in grid
                  if o['model.cell'] == 'lstm' and o['model.num_layers'] == 1)
  assert set(widths) == {64, 128}


def test_a_best_rate_at_the_grids_edge_is_bracketed_by_hand():
  s = paper_table.get_config('warpeace').sweep
  s.learning_rates, s.max_extra_rates = (1e-3, 2e-3, 4e-3), 1
  def row(cell, lr, val, seed=0):
    return {'status': 'done', 'seed': str(seed), 'cell': cell, 'num_layers': '1',
            'budget': '100', 'hidden_size': '8', 'learning_rate': str(lr),
            'best_val_loss': str(val)}
  rows = [row('rnn', 1e-3, 2.0), row('rnn', 2e-3, 1.9), row('rnn', 4e-3, 1.8),  # Top edge.
          row('gru', 1e-3, 1.7), row('gru', 2e-3, 1.8), row('gru', 4e-3, 1.9),  # Bottom.
          row('lstm', 1e-3, 2.0), row('lstm', 2e-3, 1.7), row('lstm', 4e-3, 1.9),  # Inside.
          row('lstm', 4e-3, 1.0, seed=1)]  # Other seeds do not choose.
  more = paper_study.bracket_trials(rows, s)
  assert sorted((o['model.cell'], o['train.learning_rate']) for _, o in more) == [
      ('gru', 5e-4), ('rnn', 8e-3)]
  # One step beyond the grid at most: a best at 8e-3 is not carried to 1.6e-2.
  rows.append(row('rnn', 8e-3, 1.7))
  assert [o['model.cell'] for _, o in paper_study.bracket_trials(rows, s)] == ['gru']


def test_a_model_is_unsettled_while_its_rates_run_or_its_best_is_at_an_edge():
  def name(cell, layers, lr):
    return sweep.trial_name({'model.cell': cell, 'model.num_layers': layers,
                             'model.hidden_size': 8, 'train.learning_rate': lr})
  def row(cell, layers, lr, val, budget=100):
    return {'name': name(cell, layers, lr), 'status': 'done', 'seed': '0', 'cell': cell,
            'num_layers': str(layers), 'budget': budget, 'hidden_size': '8',
            'learning_rate': str(lr), 'best_val_loss': str(val)}
  rows = [row('rnn', 1, 1e-3, 2.0), row('rnn', 1, 2e-3, 1.9), row('rnn', 1, 4e-3, 1.95),
          row('gru', 2, 1e-3, 2.0), row('gru', 2, 2e-3, 1.9),  # 4e-3 still running.
          row('lstm', 3, 1e-3, 2.0), row('lstm', 3, 2e-3, 1.8)]  # Best at the top edge.
  budgets = {r['name']: 100 for r in rows}
  budgets[name('gru', 2, 4e-3)] = 100
  budgets[name('rnn', 1, 8e-3) + '_seed-1'] = 200  # Another budget's model, running.
  assert paper_study.unsettled(rows, budgets, sweep_finished=False) == {
      ('gru', 2, 100), ('lstm', 3, 100), ('rnn', 1, 200)}
  # The 1-layer RNN at 100 is settled: 2e-3 inside the rates it finished.
  assert paper_study.unsettled(rows, budgets, sweep_finished=True) == set()


def test_brackets_and_seeds_are_planned_per_model_once_its_trials_are_done():
  s = paper_table.get_config('warpeace').sweep
  s.learning_rates, s.max_extra_rates, s.seed_budget, s.extra_seeds = (1e-3, 2e-3), 1, 100, (1,)
  def trial(cell, lr, seed=None):
    o = {'model.cell': cell, 'model.num_layers': 1, 'model.hidden_size': 8,
         'train.learning_rate': lr}
    return (100, dict(o, seed=seed) if seed is not None else o)
  def row(cell, lr, val):
    return {'name': sweep.trial_name(trial(cell, lr)[1]), 'status': 'done', 'seed': '0',
            'cell': cell, 'num_layers': '1', 'budget': 100, 'hidden_size': '8',
            'learning_rate': str(lr), 'best_val_loss': str(val)}
  planned = {sweep.trial_name(o): (b, o) for b, o in
             [trial(c, lr) for c in ('rnn', 'gru', 'lstm') for lr in (1e-3, 2e-3)]}
  # The RNN is best at the top rate (bracket: 4e-3); the GRU is best at the bottom
  # one (bracket: 5e-4); the LSTM's 2e-3 trial is still running: nothing for it yet.
  rows = [row('rnn', 1e-3, 2.0), row('rnn', 2e-3, 1.9), row('gru', 1e-3, 1.7),
          row('gru', 2e-3, 1.8), row('lstm', 1e-3, 1.5)]
  new = paper_study.plan_more(rows, planned, s)
  assert sorted((o['model.cell'], o['train.learning_rate'], o.get('seed')) for _, o in new) == [
      ('gru', 5e-4, None), ('rnn', 4e-3, None)]
  planned.update({sweep.trial_name(o): (b, o) for b, o in new})
  assert paper_study.plan_more(rows, planned, s) == []  # Planned once.
  # The LSTM finishes (best 1e-3, the bottom edge: bracket); the RNN's 4e-3 is worse
  # than its 2e-3, which is now inside its rates: its seed at 2e-3.
  rows += [row('lstm', 2e-3, 1.6), row('rnn', 4e-3, 1.95)]
  new = paper_study.plan_more(rows, planned, s)
  assert sorted((o['model.cell'], o['train.learning_rate'], o.get('seed')) for _, o in new) == [
      ('lstm', 5e-4, None), ('rnn', 2e-3, 1)]
  planned.update({sweep.trial_name(o): (b, o) for b, o in new})
  # The GRU's 5e-4 is best again, but one step beyond the grid is the limit: settled.
  rows.append(row('gru', 5e-4, 1.6))
  [(_, o)] = paper_study.plan_more(rows, planned, s)
  assert (o['model.cell'], o['train.learning_rate'], o['seed']) == ('gru', 5e-4, 1)


def test_a_larger_budget_starts_from_the_rate_its_model_chose_at_the_smallest():
  s = paper_table.get_config('warpeace').sweep
  s.budgets, s.learning_rates, s.max_extra_rates = (100, 200), (1e-3, 2e-3, 4e-3), 1
  s.seed_budget, s.extra_seeds, s.centre_rates = 100, (), True
  hidden = {(c, 1, b): w for c in ('rnn', 'gru', 'lstm') for b, w in ((100, 8), (200, 12))}
  def trial(cell, lr, budget=100):
    return (budget, {'model.cell': cell, 'model.num_layers': 1,
                     'model.hidden_size': hidden[(cell, 1, budget)], 'train.learning_rate': lr})
  def row(cell, lr, val):
    return {'name': sweep.trial_name(trial(cell, lr)[1]), 'status': 'done', 'seed': '0',
            'cell': cell, 'num_layers': '1', 'budget': 100, 'hidden_size': '8',
            'learning_rate': str(lr), 'best_val_loss': str(val)}
  planned = {sweep.trial_name(o): (b, o) for b, o in
             [trial(c, lr) for c in ('rnn', 'gru', 'lstm') for lr in s.learning_rates]}
  # The RNN settles at 2e-3 (inside): 1e-3, 2e-3 and 4e-3 at 12 units. The GRU is best
  # at the top edge (its bracket first, nothing at 200 yet); the LSTM is still running.
  rows = [row('rnn', 1e-3, 2.0), row('rnn', 2e-3, 1.9), row('rnn', 4e-3, 1.95),
          row('gru', 1e-3, 2.0), row('gru', 2e-3, 1.9), row('gru', 4e-3, 1.8),
          row('lstm', 1e-3, 1.5)]
  new = paper_study.plan_more(rows, planned, s, hidden)
  assert sorted((b, o['model.cell'], o['model.hidden_size'], o['train.learning_rate'])
                for b, o in new) == [(100, 'gru', 8, 8e-3), (200, 'rnn', 12, 1e-3),
                                     (200, 'rnn', 12, 2e-3), (200, 'rnn', 12, 4e-3)]
  planned.update({sweep.trial_name(o): (b, o) for b, o in new})
  assert paper_study.plan_more(rows, planned, s, hidden) == []  # Planned once.
  # The GRU's 8e-3 is worse: settled at 4e-3, so 2e-3, 4e-3 and 8e-3 at 200.
  rows.append(row('gru', 8e-3, 1.85))
  new = paper_study.plan_more(rows, planned, s, hidden)
  assert sorted((b, o['model.cell'], o['train.learning_rate']) for b, o in new) == [
      (200, 'gru', 2e-3), (200, 'gru', 4e-3), (200, 'gru', 8e-3)]
  # Without centre_rates a larger budget is never planned here (it is in the grid):
  # only the LSTM's bracket (one rate tried) at 100.
  s.centre_rates = False
  assert [(b, o['model.cell']) for b, o in paper_study.plan_more(rows, {}, s, hidden)] == [
      (100, 'lstm')]


def test_report_only_needs_a_paper_table_sweep_with_results(tmp_path):
  from configs.sweeps import shakespeare_hidden
  with pytest.raises(UserError, match='--report_only is for paper_table sweeps'):
    scale_runs.report_only(shakespeare_hidden.get_config('cpu'), str(tmp_path))
  with pytest.raises(UserError, match='holds no results.csv and budgets.json'):
    scale_runs.report_only(_tiny_paper_config(), str(tmp_path))
