"""The record: every file README.md and docs/*.md link to exists."""

import pathlib
import re

import pytest

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
