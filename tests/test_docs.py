"""The record: every file README.md and docs/*.md link to exists, every table they
repeat from a report equals it, and Table 1's results.csv agrees with its trial folders."""

import csv
import json
import pathlib
import re

import pytest

from rnnlm.studies import report

_ROOT = pathlib.Path(__file__).resolve().parent.parent
_PAGES = [_ROOT / 'README.md', *sorted((_ROOT / 'docs').glob('*.md'))]
_LINK = re.compile(r'\]\(([^)#\s]+)(?:#[^)]*)?\)')


def _local_links(page: pathlib.Path) -> list[str]:
  return [l for l in _LINK.findall(page.read_text()) if '://' not in l and
          not l.startswith('mailto:')]


@pytest.mark.parametrize('page', _PAGES, ids=lambda p: p.name)
def test_every_linked_file_exists(page):
  missing = [l for l in _local_links(page) if not (page.parent / l).exists()]
  assert not missing, f'{page.name} links to missing files: {missing}'


def test_the_link_check_sees_links(tmp_path):
  page = tmp_path / 'p.md'
  page.write_text('see [a](results/a.md), ![fig](b.png#x) and [web](https://x.org/y)\n')
  assert _local_links(page) == ['results/a.md', 'b.png']


_RESULTS = _ROOT / 'docs' / 'results'


def test_docs_results_is_one_folder_per_experiment_with_its_run_files():
  loose = [p.name for p in _RESULTS.iterdir() if p.is_file()]
  assert not loose, f'files at the top of docs/results/: {loose}'
  for folder in sorted(p for p in _RESULTS.iterdir() if p.is_dir()):
    names = {p.name for p in folder.rglob('*') if p.is_file()}
    assert 'run.sh' in names, f'{folder.name} has no run.sh'
    # The numbers themselves: results, metrics, a report or a table the command wrote.
    assert any(n.endswith(('.json', '.jsonl', '.csv', '.md', '.txt')) for n in names - {'run.sh'}), (
        f'{folder.name} holds no results')


@pytest.mark.parametrize('page', _PAGES, ids=lambda p: p.name)
def test_every_copied_table_equals_its_report(page):
  # A table marked "<!-- table from FILE -->" repeats FILE's table of the same first
  # header cell; `python experiments/paper_2015.py` rewrites them after a run.
  for t in report.copied_tables(str(page)):
    assert t['original'] is not None, f'{page.name}:{t["line"]}: {t["source"]} has no such table'
    assert t['copy'] == t['original'], (
        f'{page.name}:{t["line"]}: the table differs from {t["source"]}; run'
        ' python experiments/paper_2015.py')


def test_copied_tables_are_found_and_rewritten_from_their_source(tmp_path):
  (tmp_path / 'r').mkdir()
  (tmp_path / 'r' / 'report.md').write_text(
      '# R\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\ntext\n\n| model | x |\n|---|---|\n| LSTM | 1.400 |\n')
  page = tmp_path / 'page.md'
  page.write_text('# P\n\n<!-- table from r/report.md -->\n| model | x |\n|---|---|\n'
                  '| LSTM | 1.4 |\n| GRU | - |\n\nafter\n\n| a | b |\n|---|---|\n| 9 | 9 |\n')
  [t] = report.copied_tables(str(page))
  assert t['line'] == 4 and t['copy'][-1] == '| GRU | - |'
  assert t['original'] == ['| model | x |', '|---|---|', '| LSTM | 1.400 |']
  assert report.sync_copied_tables(str(page)) == [str(tmp_path / 'r' / 'report.md')]
  # The marked table now equals its source's; the unmarked one is left as it was.
  assert page.read_text() == ('# P\n\n<!-- table from r/report.md -->\n| model | x |\n'
                              '|---|---|\n| LSTM | 1.400 |\n\nafter\n\n| a | b |\n|---|---|\n'
                              '| 9 | 9 |\n')
  assert report.sync_copied_tables(str(page)) == []
  page.write_text('<!-- table from r/report.md -->\n| nothing | x |\n|---|---|\n')
  with pytest.raises(ValueError, match='has no table headed "nothing"'):
    report.sync_copied_tables(str(page))
  page.write_text('<!-- table from r/report.md -->\n\n| model | x |\n')
  with pytest.raises(ValueError, match='no table on the next line'):
    report.copied_tables(str(page))


# Table 1's sweeps: the committed results.csv against the trial folders beside it.
_TABLE_SWEEPS = sorted(p.parent for p in _RESULTS.glob('*/results.csv')
                       if (p.parent / 'trials').is_dir() and (p.parent / 'budgets.json').exists())


def _trial_results(sweep: pathlib.Path) -> dict:
  """{trial name: (model key, seed, rate, results.json)} for every finished trial folder."""
  out = {}
  for f in sorted(sweep.glob('trials/*/results.json')):
    cfg = json.loads((f.parent / 'config.json').read_text())
    m, t = cfg['model'], cfg['train']
    key = (m['cell'], m['num_layers'], m['hidden_size'])
    out[f.parent.name] = (key, cfg['seed'], t['learning_rate'], json.loads(f.read_text()))
  return out


def test_there_are_table_sweeps_to_check():
  assert {p.name for p in _TABLE_SWEEPS} >= {'paper_warpeace', 'paper_linux'}


@pytest.mark.parametrize('sweep', _TABLE_SWEEPS, ids=lambda p: p.name)
def test_every_table_row_is_its_trial_folders_result(sweep):
  trials = _trial_results(sweep)
  with open(sweep / 'results.csv') as f:
    rows = [r for r in csv.DictReader(f) if r['status'] == 'done']
  assert rows
  for r in rows:
    assert r['name'] in trials, f'{sweep.name}: {r["name"]} has no finished trial folder'
    res = trials[r['name']][3]
    assert float(r['best_val_loss']) == pytest.approx(res['best_val_loss'], abs=1e-9), r['name']
    assert float(r['test_loss']) == pytest.approx(res['test_loss'], abs=1e-9), r['name']


@pytest.mark.parametrize('sweep', _TABLE_SWEEPS, ids=lambda p: p.name)
def test_a_finished_table_chose_each_models_best_trial_on_validation(sweep):
  # Once a sweep is finished, each model's chosen rate (the table's) has the lowest
  # validation loss of every finished seed-0 trial of that model in trials/, whether
  # or not the sweep planned it: no better trial is left out.
  if not (sweep / 'finished.json').exists():
    pytest.skip(f'{sweep.name} is still running')
  trials = _trial_results(sweep)
  best = {}
  for key, seed, rate, res in trials.values():
    if seed == 0 and (key not in best or res['best_val_loss'] < best[key][1]):
      best[key] = (rate, res['best_val_loss'])
  with open(sweep / 'results.csv') as f:
    rows = [r for r in csv.DictReader(f) if r['status'] == 'done' and int(r['seed']) == 0]
  chosen = {}
  for r in rows:
    key = (r['cell'], int(r['num_layers']), int(r['hidden_size']))
    if key not in chosen or float(r['best_val_loss']) < chosen[key][1]:
      chosen[key] = (float(r['learning_rate']), float(r['best_val_loss']))
  assert set(chosen) == set(best)
  assert len(chosen) == 18
  for key in best:
    assert chosen[key][0] == pytest.approx(best[key][0]), (
        f'{sweep.name} {key}: chose {chosen[key]}, a trial has {best[key]}')
