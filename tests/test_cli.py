"""Every bad input a user can give: one line on stderr, exit code 2, workdir untouched."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *args, env_extra=None):
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='')
  env.update(env_extra or {})
  return subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', script), *args],
                        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def assert_user_error(proc, *needles):
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith('error: ')]
  assert len(lines) == 1, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr and 'Exception ignored' not in proc.stderr
  for n in needles:
    assert n in lines[0], lines[0]


def snapshot(d):
  return {os.path.join(r, f): open(os.path.join(r, f), 'rb').read()
          for r, _, fs in os.walk(d) for f in fs}


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  wd = str(tmp_path_factory.mktemp('cli') / 'run')
  proc = run('train.py', '--config=configs/tiny.py', f'--workdir={wd}',
             '--config.train.num_steps=10', '--config.eval.eval_every=10',
             env_extra={'RNNLM_DATA': str(tmp_path_factory.getbasetemp() / 'cli_data')})
  assert proc.returncode == 0, proc.stderr[-3000:]
  return wd


def train_on(tmp_path, path, *extra):
  return run('train.py', '--config=configs/tiny.py', f'--workdir={tmp_path}/wd',
             f'--config.data.path={path}', *extra)


def test_missing_file(tmp_path):
  assert_user_error(train_on(tmp_path, tmp_path / 'nope.txt'), 'not found', 'nope.txt')


def test_empty_file(tmp_path):
  (tmp_path / 'e.txt').write_text('')
  assert_user_error(train_on(tmp_path, tmp_path / 'e.txt'), 'empty')


def test_binary_file(tmp_path):
  (tmp_path / 'b.dat').write_bytes(bytes(range(256)) * 10)
  assert_user_error(train_on(tmp_path, tmp_path / 'b.dat'), 'binary')


def test_not_utf8_says_where(tmp_path):
  (tmp_path / 'l.txt').write_bytes(b'hello\nworld\ncaf\xe9\n' * 100)
  assert_user_error(train_on(tmp_path, tmp_path / 'l.txt'), 'not UTF-8', 'offset 15', 'line 3')


def test_corpus_shorter_than_one_window(tmp_path):
  (tmp_path / 's.txt').write_text('short text\n' * 3)
  assert_user_error(train_on(tmp_path, tmp_path / 's.txt'), 'fewer than one batch window')


@pytest.mark.slow
def test_sampler_bad_args(trained):
  assert_user_error(run('sample.py', f'--workdir={trained}', '--prime=ZQ~'), 'vocabulary')
  assert_user_error(run('sample.py', f'--workdir={trained}', '--temperature=0'), 'temperature')
  assert_user_error(run('sample.py', f'--workdir={trained}', '--top_k=-1'), 'top_k')
  assert_user_error(run('sample.py', f'--workdir={trained}', '--top_p=1.5'), 'top_p')
  assert_user_error(run('sample.py', f'--workdir={trained}', '--step=7'), 'step 7')


def test_sampler_workdir_without_checkpoint(tmp_path):
  assert_user_error(run('sample.py', f'--workdir={tmp_path}'), 'no run')
  (tmp_path / 'config.json').write_text('{}')
  os.makedirs(tmp_path / 'checkpoints')
  assert_user_error(run('sample.py', f'--workdir={tmp_path}'), 'no checkpoint')


def test_sampler_prints_text(trained):
  proc = run('sample.py', f'--workdir={trained}', '--prime=KING.', '--length=20', '--seed=3')
  assert proc.returncode == 0, proc.stderr[-2000:]
  again = run('sample.py', f'--workdir={trained}', '--prime=KING.', '--length=20', '--seed=3')
  assert proc.stdout.startswith('KING.') and len(proc.stdout) == len('KING.') + 20 + 1
  assert proc.stdout == again.stdout


def test_config_mismatch_leaves_workdir_alone(trained):
  before = snapshot(trained)
  proc = run('train.py', '--config=configs/tiny.py', f'--workdir={trained}',
             '--config.model.num_layers=3')
  assert_user_error(proc, 'model.num_layers')
  assert snapshot(trained) == before


def test_benchmark_smoke_table_and_json(tmp_path):
  """A tiny benchmark run: a table row per implementation and a matmul row per shape,
  and "of matmul rate" in the JSON equal to GFLOP/s over that shape's matmul rate."""
  out = tmp_path / 'bench.json'
  proc = run('benchmark.py', '--cells=rnn', '--hidden=16', '--batch=4', '--seq_length=6',
             '--vocab=7', '--steps=1', '--repeats=1', '--sample_length=0', '--torch=false',
             '--flax=false', '--matmul_size=64', f'--json_out={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [l for l in proc.stdout.splitlines() if l.startswith('| rnn | 16 |')]
  names = [r.split('|')[3].strip() for r in rows]
  from rnnlm.bench import benchmark as bm
  # The scan row is there where `auto` runs this shape through the kernels (AVX-512, AVX2).
  kernel = bm.uses_cpu_kernel(bm.Shape('rnn', 16, batch=4, seq_length=6, vocab=7))
  assert names == ['rnnlm'] + ['rnnlm (custom-VJP scan)'] * kernel + [
      'rnnlm (autodiff scan)', 'float32 matmul (same rounds)'], proc.stdout
  import json
  res = json.loads(out.read_text())
  [mm] = res['matmul_interleaved']
  assert mm['gflops'] > 0 and len(mm['times_s']) == 1
  assert res['matmul_size'] == 64
  for r in res['training']:
    assert r['of_matmul_rate'] == pytest.approx(r['gflops'] / mm['gflops'])


@pytest.mark.slow
def test_benchmark_transformer_rows(tmp_path):
  """The transformer table: both context modes, each in the JSON with its numbers."""
  out = tmp_path / 'bench.json'
  proc = run('benchmark.py', '--cells=rnn', '--hidden=16', '--batch=2', '--seq_length=5',
             '--vocab=7', '--steps=1', '--repeats=1', '--sample_length=0', '--torch=false',
             '--flax=false', '--noreference', '--noscan', '--matmul_size=64',
             '--transformer_hidden=8', '--transformer_layers=2', '--transformer_heads=2',
             '--context_length=4', f'--json_out={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [l.split('|')[2].strip() for l in proc.stdout.splitlines() if l.startswith('| 8 |')]
  assert rows == ['rnnlm, context recompute', 'rnnlm, context cached'], proc.stdout
  import json
  res = json.loads(out.read_text())['transformer']
  assert [r['implementation'] for r in res] == rows
  for r in res:
    assert r['chars_per_sec'] > 0 and r['context'] == 4 and r['layers'] == 2
    assert r['gflops'] == pytest.approx(r['chars_per_sec'] * 6 * (2 * (12 * 64 + 2 * 8 * 4)
                                                                  + 8 * 7) / 1e9)


@pytest.mark.parametrize('flag,needle', [
    ('--steps=0', '--steps'), ('--matmul_size=0', '--matmul_size'),
    ('--cells=lsmt', '--cells'), ('--hidden=12x', '--hidden'),
    ('--json_out=/nonexistent_dir/b.json', '--json_out'),
    ('--transformer_hidden=18', '--transformer_hidden'), ('--context_length=0', '--context_length')])
def test_benchmark_bad_flags(flag, needle):
  assert_user_error(run('benchmark.py', '--torch=false', '--flax=false', flag), needle)


@pytest.mark.parametrize('args,needle', [
    (['--layer=3', '--unit=0'], '--layer must be in 1..2'),
    (['--layer=1', '--unit=32'], '--unit must be in 0..31'),
    (['--layer=1'], 'give both --layer and --unit'),
    (['--text_file=TEXT:hello \u20ac world, and more text than twenty characters'],
     'pass --skip_unknown'),
    (['--text_file=TEXT:'], 'the text has 0 characters'),
    (['--text_file=TEXT:KING.'], 'the text has 5 characters; give at least 21'),
    (['--text_file=/no/such/file.txt'], 'no such text file'),
    (['--max_chars=0'], '--max_chars must be at least 1'),
    (['--compare_with=/no/such/inside.json'], 'is not an inside.json'),
])
@pytest.mark.slow
def test_look_inside_bad_input_writes_nothing(trained, tmp_path, args, needle):
  args = list(args)
  for i, a in enumerate(args):
    if a.startswith('--text_file=TEXT:'):
      path = tmp_path / 'text.txt'
      path.write_text(a[len('--text_file=TEXT:'):], encoding='utf-8')
      args[i] = f'--text_file={path}'
  before = snapshot(trained)
  assert_user_error(run('look_inside.py', f'--workdir={trained}', *args), needle)
  assert snapshot(trained) == before


def test_look_inside_without_a_checkpoint(tmp_path):
  assert_user_error(run('look_inside.py', f'--workdir={tmp_path}'), 'no run')
  assert os.listdir(tmp_path) == []


def test_look_inside_writes_page_and_report(trained, tmp_path):
  out = tmp_path / 'inside'
  text = tmp_path / 'text.txt'
  text.write_text('KING.\nWhat say you?\n\n\u20acQUEEN.\nNothing, my lord.\n' * 20)
  proc = run('look_inside.py', f'--workdir={trained}', f'--out_dir={out}',
             f'--text_file={text}', '--skip_unknown', '--max_order=5', '--layer=2', '--unit=3')
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = (out / 'inside.md').read_text()
  assert '## Against n-gram models' in report and '| 5-gram |' in report
  assert 'has a cell' in report and '## Gate saturation' in report
  page = (out / 'inside.html').read_text()
  assert 'chosen: layer 2 unit 3' in page and '\u20ac' not in page
  assert (out / 'saturation.png').exists() and (out / 'errors.png').exists()
  assert "## The model's errors, oracle by oracle" in report
  assert '| dynamic memory |' in report and '| the rest |' in report


@pytest.mark.slow
def test_look_inside_draws_a_second_models_errors(trained, tmp_path):
  text = tmp_path / 'text.txt'
  text.write_text('KING.\nWhat say you?\n\nQUEEN.\nNothing, my lord.\n' * 20)
  args = (f'--workdir={trained}', f'--text_file={text}', '--skip_unknown', '--max_order=5')
  first, second = tmp_path / 'a', tmp_path / 'b'
  assert run('look_inside.py', *args, f'--out_dir={first}').returncode == 0
  proc = run('look_inside.py', *args, f'--out_dir={second}',
             f'--compare_with={first}/inside.json')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (second / 'errors.png').exists()


@pytest.mark.slow
def test_evaluate_text_file_with_per_char_losses(trained, tmp_path):
  import json
  text = tmp_path / 'text.txt'
  text.write_text('KING.\nWhat say you.\n' * 5)
  out = tmp_path / 'loss.tsv'
  proc = run('evaluate.py', f'--workdir={trained}', f'--text_file={text}',
             f'--per_char_out={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout)
  rows = out.read_text().splitlines()[1:]
  assert len(rows) == result['characters_predicted'] == len(text.read_text()) - 1
  losses = [float(r.split('\t')[2]) for r in rows]
  assert sum(losses) / len(losses) == pytest.approx(result['loss_nats'], rel=1e-4)
  assert result['bits_per_char'] == pytest.approx(result['loss_nats'] / 0.6931471805599453)
  proc = run('evaluate.py', f'--workdir={trained}', '--split=val')
  assert proc.returncode == 0 and json.loads(proc.stdout)['text'] == 'val split'
  assert_user_error(run('evaluate.py', f'--workdir={trained}', '--text_file=/no/file'),
                    'no such text file')


@pytest.mark.slow
def test_sampler_prime_file(trained, tmp_path):
  prime = tmp_path / 'prime.txt'
  prime.write_text('KING.\nWhat say')
  proc = run('sample.py', f'--workdir={trained}', f'--prime_file={prime}', '--length=15')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.startswith('KING.\nWhat say') and len(proc.stdout) == 14 + 15 + 1
  assert_user_error(run('sample.py', f'--workdir={trained}', '--prime_file=/no/file'),
                    'no such text file')
  prime.write_text('\u20ac')
  assert_user_error(run('sample.py', f'--workdir={trained}', f'--prime_file={prime}'),
                    "not in the model's vocabulary", 'remove them from the file')


def test_step_time_bad_variant_is_a_one_line_error():
  proc = run('step_time.py', '--config=configs/tiny.py', '--variants=x:model.dropout')
  assert_user_error(proc, 'field=value')


def test_step_time_bad_field_value_is_a_one_line_error():
  proc = run('step_time.py', '--config=configs/tiny.py', '--variants=x:model.cell=lsmt')
  assert_user_error(proc, 'model.cell')


@pytest.mark.slow
def test_time_to_quality_on_a_real_run_and_its_errors(trained, tmp_path):
  out = tmp_path / 'minutes'
  proc = run('time_to_quality.py', f'--run=tiny={trained}', f'--out={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert '| tiny |' in (out / 'report.md').read_text()
  assert_user_error(run('time_to_quality.py', f'--run={trained}', f'--out={out}'),
                    'label=workdir')
  assert_user_error(run('time_to_quality.py', f'--run=x={tmp_path}', f'--out={out}'),
                    'no metrics.jsonl')


def _copy(wd, tmp_path):
  import shutil
  dest = str(tmp_path / 'copy')
  shutil.copytree(wd, dest)
  return dest


def test_a_checkpoint_that_does_not_fit_is_one_line_and_not_set_aside(trained, tmp_path):
  wd = _copy(trained, tmp_path)
  path = os.path.join(wd, 'config.json')
  with open(path) as f:
    text = f.read()
  with open(path, 'w') as f:
    f.write(text.replace('"hidden_size": 32', '"hidden_size": 24'))
  proc = run('sample.py', f'--workdir={wd}', '--length=20')
  assert_user_error(proc, 'does not fit this model', 'use the config the run was trained with')
  assert not os.path.exists(os.path.join(wd, 'checkpoints_set_aside'))


def test_no_intact_checkpoint_is_one_line_and_nothing_is_deleted(trained, tmp_path):
  import glob
  wd = _copy(trained, tmp_path)
  for f in glob.glob(os.path.join(wd, 'checkpoints', '*', 'state', '**', 'd', '*'),
                     recursive=True):
    open(f, 'wb').close()  # Every array file cut to zero bytes.
  steps = sorted(os.listdir(os.path.join(wd, 'checkpoints')))
  proc = run('train.py', '--config=configs/tiny.py', f'--workdir={wd}',
             '--config.train.num_steps=20', '--config.eval.eval_every=10')
  assert_user_error(proc, f'no intact checkpoint in {wd}', '--workdir', 'init_from')
  assert sorted(os.listdir(os.path.join(wd, 'checkpoints_set_aside'))) == steps


def test_paper_2015_without_a_results_dir(tmp_path):
  assert_user_error(run('paper_2015.py', f'--results_dir={tmp_path}/none',
                        f'--out_dir={tmp_path}/out'), 'is not a directory')
  assert not (tmp_path / 'out').exists()


def test_paper_2015_with_a_page_it_cannot_sync(tmp_path):
  (tmp_path / 'results').mkdir()
  assert_user_error(run('paper_2015.py', f'--results_dir={tmp_path}/results',
                        f'--out_dir={tmp_path}/out', f'--page={tmp_path}/none.md'),
                    'is not a file')
  page = tmp_path / 'page.md'
  page.write_text('<!-- table from out/report.md -->\n| no such table | x |\n|---|---|\n')
  assert_user_error(run('paper_2015.py', f'--results_dir={tmp_path}/results',
                        f'--out_dir={tmp_path}/out', f'--page={page}'),
                    'has no table headed "no such table"', 'fix the marker or the report')
  # The report was written before the page was read; the page is left as it was.
  assert (tmp_path / 'out' / 'report.md').exists()
  assert page.read_text().startswith('<!-- table from out/report.md -->\n| no such table')
