"""The library's layers are packages, and a lower layer never imports a higher one:
errors < data < model < config < training < studies < bench. Nothing imports
experiments/ (the entry points), and no module grows past 600 lines."""

import ast
import os
import pathlib

import pytest

_ROOT = pathlib.Path(__file__).resolve().parent.parent / 'rnnlm'
_LEVEL = {'errors': 0, 'data': 1, 'model': 2, 'config': 3, 'training': 4, 'studies': 5,
          'bench': 6}


def _layer(module: str) -> str:
  """'rnnlm.training.steps' -> 'training'."""
  return module.split('.')[1]


def _modules():
  for path in sorted(_ROOT.rglob('*.py')):
    rel = path.relative_to(_ROOT.parent).with_suffix('')
    yield '.'.join(rel.parts), path


def _imports(path: pathlib.Path, module: str) -> list[str]:
  """Every rnnlm (or experiments) module that `path` imports, at any depth."""
  out = []
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      out += [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:  # Relative: resolve against the importing package.
        base = '.'.join(module.split('.')[:-node.level] + ([base] if base else []))
      out += [base] + [f'{base}.{a.name}' for a in node.names]
  return [m for m in out if m.split('.')[0] in ('rnnlm', 'experiments')]


def test_the_layers_are_packages_with_few_loose_modules():
  packages = {p.name for p in _ROOT.iterdir() if (p / '__init__.py').exists()}
  assert {'data', 'model', 'training', 'studies', 'bench'} <= packages
  loose = [p.name for p in _ROOT.glob('*.py') if p.name != '__init__.py']
  assert len(loose) <= 4, loose
  assert set(packages) | {p[:-3] for p in loose} <= set(_LEVEL)


@pytest.mark.parametrize('module,path', list(_modules()), ids=lambda x: str(x))
def test_no_module_imports_a_higher_layer(module, path):
  if module == 'rnnlm' or module == 'rnnlm.__init__':
    return  # The public API names modules of every layer, imported on first use.
  mine = _LEVEL[_layer(module)]
  for imported in _imports(path, module):
    assert not imported.startswith('experiments'), f'{module} imports {imported}'
    if imported == 'rnnlm' or _layer(imported) not in _LEVEL:
      continue
    theirs = _LEVEL[_layer(imported)]
    assert theirs <= mine, f'{module} ({_layer(module)}) imports {imported} ({_layer(imported)})'


def test_no_module_is_over_600_lines():
  long = {str(p.relative_to(_ROOT)): n for p in _ROOT.rglob('*.py')
          if (n := len(p.read_text().splitlines())) > 600}
  assert not long


def test_the_check_sees_a_violation(tmp_path):
  """The import scan finds a lower layer's import of a higher one (and a relative one)."""
  bad = tmp_path / 'bad.py'
  bad.write_text('def f():\n  from rnnlm.studies import sweep\nfrom . import train\n')
  found = _imports(bad, 'rnnlm.training.bad')
  assert 'rnnlm.studies.sweep' in found and 'rnnlm.training.train' in found
  assert _LEVEL[_layer('rnnlm.studies.sweep')] > _LEVEL['data']


def test_the_public_api_is_named_and_light():
  import subprocess
  import sys
  code = ('import sys, rnnlm; assert "jax" not in sys.modules, "import rnnlm loads jax";'
          ' print(sorted(rnnlm.__all__)); rnnlm.train_and_evaluate; rnnlm.get_corpus;'
          ' rnnlm.load_model; rnnlm.generate_text; rnnlm.run_sweep; rnnlm.CharLM')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(_ROOT.parent)))
  assert out.returncode == 0, out.stderr[-2000:]
  names = ast.literal_eval(out.stdout.strip().splitlines()[-1])
  assert {'CharLM', 'train_and_evaluate', 'load_model', 'generate_text', 'get_corpus',
          'run_sweep'} <= set(names)


def test_the_readme_python_example_runs(tmp_path, capsys):
  import re
  readme = (_ROOT.parent / 'README.md').read_text()
  [code] = re.findall(r'```python\n(.*?)```', readme, re.S)
  exec(compile(code.replace("'/tmp/tiny'", repr(str(tmp_path / 'tiny'))), 'README', 'exec'), {})
  lines = capsys.readouterr().out.strip().splitlines()
  assert lines[0].startswith('KING.') and float(lines[-1]) > 0


def test_the_train_loop_reads_in_one_sitting():
  """`train_and_evaluate` stays at most 100 lines: set up, loop, finish; the rest is in
  units it calls."""
  import inspect
  from rnnlm.training import train
  lines, _ = inspect.getsourcelines(train.train_and_evaluate)
  assert len(lines) <= 100, len(lines)
