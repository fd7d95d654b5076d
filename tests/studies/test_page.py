"""The look-inside page in a real browser (headless Chromium): rendered, and safe."""

import html as html_lib
import re
import shutil
import subprocess

import numpy as np
import pytest

from rnnlm.studies.inside import page
from rnnlm.studies.inside import scores

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason='no chromium on this machine (.ci/run installs Debian\'s package)')

HOSTILE = ('KING.\nWe say "hello" & <b>bold</b>\n'
           '</script><script>document.body.setAttribute("data-pwned", "1")</script>\n'
           '<img src=x onerror="document.body.setAttribute(\'data-pwned\', \'2\')">\n'
           '\u2028end\tof {text}\n')


def _chromium(*args, tmp_path):
  cmd = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
         '--no-first-run', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', f'--user-data-dir={tmp_path / "profile"}', *args]
  return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _write_page(path, text):
  chars = sorted(set(text))
  n = len(text)
  rng = np.random.default_rng(0)
  states = {(0, 'h'): rng.normal(size=(n, 4)).astype(np.float16),
            (1, 'c'): np.linspace(-2, 3, n)[:, None].repeat(4, axis=1).astype(np.float16)}
  top_cells = {
      'line_position': [scores.CellScore('line_position', 'count', 1, 'c', 2, 0.91, 0.91),
                        scores.CellScore('line_position', 'count', 0, 'h', 1, -0.2, 0.2)],
      'inside_quotes': [scores.CellScore('inside_quotes', 'binary', 0, 'h', 3, 0.8, 0.6)]}
  top_ids = rng.integers(0, len(chars), (n, 5))
  top_probs = np.sort(rng.random((n, 5)), axis=1)[:, ::-1]
  data = page.page_data('test page', 'synthetic', text, states, rng.random(n - 1) * 4,
                        top_ids, top_probs, chars, top_cells,
                        {'line_position': 0.3, 'inside_quotes': 0.2})
  page.write(str(path), data)
  return data


@needs_chromium
def test_page_renders_in_chromium_and_injects_nothing(tmp_path):
  html = tmp_path / 'inside.html'
  data = _write_page(html, HOSTILE)
  proc = _chromium('--dump-dom', f'file://{html}', tmp_path=tmp_path)
  dom = proc.stdout
  body = re.search(r'<body[^>]*>', dom).group(0)
  assert 'data-ready="true"' in body, proc.stderr[-2000:]  # The script ran to its end.
  assert 'data-errors' not in body  # No script error.
  assert 'data-pwned' not in body  # The text's script and handler never ran ...
  assert '<img' not in dom and '<b>' not in dom  # ... and made no element.
  # Every character of the text is on the page, coloured by the first cell.
  text_div = re.search(r'<div id="text">(.*?)</div>', dom, re.S).group(1)
  spans = re.findall(r'<span data-i="(\d+)" style="background-color: ([^"]+);">', text_div)
  assert len(spans) == len(HOSTILE)
  assert len({colour for _, colour in spans}) > 10  # A ramp of colours, not one.
  # Shown as text: the spans' contents read back (entities decoded, the visible
  # stand-ins for newline, space and tab undone) are the text itself.
  shown = [html_lib.unescape(t) for t in re.findall(r'<span [^>]*>(.*?)</span>', text_div, re.S)]
  undo = {'\u21b5\n': '\n', '\u00a0': ' ', '\u2192\u00a0\u00a0\u00a0': '\t'}
  assert ''.join(undo.get(t, t) for t in shown) == HOSTILE
  # The picker lists the features' cells with their scores.
  options = re.findall(r'<option value="\d+">([^<]*)</option>', dom)
  assert options == ['L2.c[2]  r = 0.910', 'L1.h[1]  r = -0.200', 'L1.h[3]  AUC = 0.800']
  assert len(data['cells']) == 3
  # A screenshot of the page (kept with the test's files).
  shot = tmp_path / 'inside.png'
  proc = _chromium(f'--screenshot={shot}', '--window-size=1000,700', f'file://{html}',
                   tmp_path=tmp_path)
  assert shot.exists() and shot.stat().st_size > 5000, proc.stderr[-2000:]
  assert shot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_page_json_cannot_close_its_script_block(tmp_path):
  html = tmp_path / 'inside.html'
  _write_page(html, HOSTILE)
  source = html.read_text()
  block = source.split('<script type="application/json" id="rnnlm-data">')[1]
  block = block.split('</script>')[0]
  assert '<' not in block and '>' not in block and '&' not in block
  assert source.count('</script>') == 2  # The data block's and the code's, nothing more.
