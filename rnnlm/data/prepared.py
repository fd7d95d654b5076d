"""Prepared corpora: a text tokenized once into `<cache>/vocab.json`,
`<cache>/tokens.bin` (uint8 or uint16) and `<cache>/meta.json`, then read back as a
read-only memmap, so that corpora larger than RAM work.

meta.json records the token file's size and SHA-256. `load_prepared` checks the
size every time (cheap) and, when asked, the checksum; a cache that fails either, or
whose files cannot be read, raises `DamagedCache` (the caller rebuilds it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil

import numpy as np

from rnnlm.data.text import Vocab, atomic_write, file_sha256
from rnnlm.errors import UserError


# ----------------------------------------------------------------------------
# Prepared corpora: vocab.json + tokens.bin + meta.json in one directory.


def prepare(chunks_fn, out_dir: str, provenance: dict | None = None) -> str:
  """Tokenizes a corpus into `out_dir` in two streaming passes.

  Args:
    chunks_fn: a callable returning a fresh iterator of text chunks (called twice:
      once to collect the vocabulary, once to write tokens).
    out_dir: where `vocab.json`, `tokens.bin` and `meta.json` go. Written to a
      temporary directory first and renamed, so a crash leaves nothing half-made.
    provenance: extra facts recorded in meta.json (source, files, sha256 ...).

  Returns:
    out_dir.

  Raises:
    UserError: the corpus is empty.
  """
  chars: set[str] = set()
  text_hash = hashlib.sha256()
  for chunk in chunks_fn():
    chars.update(chunk)
    text_hash.update(chunk.encode('utf-8'))
  if not chars:
    raise UserError('the corpus is empty; give a non-empty text file or directory')
  vocab = Vocab(tuple(sorted(chars)))
  table = {c: i for i, c in enumerate(vocab.chars)}

  tmp_dir = f'{out_dir}.tmp{os.getpid()}'
  os.makedirs(tmp_dir, exist_ok=True)
  n = 0
  tokens_hash = hashlib.sha256()
  with open(os.path.join(tmp_dir, 'tokens.bin'), 'wb') as f:
    for chunk in chunks_fn():
      ids = np.fromiter((table[c] for c in chunk), dtype=vocab.dtype, count=len(chunk))
      f.write(ids.tobytes())
      tokens_hash.update(ids.tobytes())
      n += len(chunk)
  vocab.save(os.path.join(tmp_dir, 'vocab.json'))
  meta = dict(provenance or {})
  meta.update(num_tokens=n, dtype=vocab.dtype.name, vocab_size=len(vocab),
              text_sha256=text_hash.hexdigest(), tokens_bytes=n * vocab.dtype.itemsize,
              tokens_sha256=tokens_hash.hexdigest())
  atomic_write(os.path.join(tmp_dir, 'meta.json'), json.dumps(meta, indent=2))
  os.makedirs(os.path.dirname(os.path.abspath(out_dir)), exist_ok=True)
  if os.path.exists(out_dir):  # Another process prepared it meanwhile.
    shutil.rmtree(tmp_dir)
  else:
    os.replace(tmp_dir, out_dir)
  return out_dir


def is_prepared(out_dir: str) -> bool:
  return all(os.path.exists(os.path.join(out_dir, f))
             for f in ('vocab.json', 'tokens.bin', 'meta.json'))


@dataclasses.dataclass
class Corpus:
  """A prepared corpus: its vocabulary, all token ids (memmap), and provenance."""

  vocab: Vocab
  tokens: np.ndarray  # [num_tokens], uint8 or uint16, read-only memmap.
  meta: dict


class DamagedCache(Exception):
  """A prepared corpus whose files are not what `prepare` wrote."""


def load_prepared(out_dir: str, verify_checksum: bool = False) -> Corpus:
  """The prepared corpus in `out_dir`, its token file's size checked (and with
  `verify_checksum`, its SHA-256, where meta.json records one).

  Raises:
    DamagedCache: a file is missing or unreadable, or the tokens are not those written.
    UserError: the corpus is empty.
  """
  try:
    with open(os.path.join(out_dir, 'meta.json')) as f:
      meta = json.load(f)
    vocab = Vocab.load(os.path.join(out_dir, 'vocab.json'))
    itemsize = np.dtype(meta['dtype']).itemsize
    num_tokens = int(meta['num_tokens'])
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise DamagedCache(f'its meta.json or vocab.json cannot be read ({type(e).__name__}:'
                       f' {str(e)[:100]})') from e
  if len(vocab) != meta.get('vocab_size', len(vocab)):
    raise DamagedCache(f'vocab.json has {len(vocab)} characters, meta.json says'
                       f' {meta["vocab_size"]}')
  path = os.path.join(out_dir, 'tokens.bin')
  size = os.path.getsize(path) if os.path.exists(path) else None
  if size != num_tokens * itemsize:
    raise DamagedCache(f'tokens.bin has {size} bytes, {num_tokens * itemsize} were written')
  if verify_checksum and meta.get('tokens_sha256') and file_sha256(path) != meta['tokens_sha256']:
    raise DamagedCache('tokens.bin has other bytes than were written (SHA-256 differs)')
  if num_tokens == 0:
    raise UserError(f'the corpus in {out_dir} is empty; give a non-empty text')
  tokens = np.memmap(path, dtype=meta['dtype'], mode='r', shape=(num_tokens,))
  return Corpus(vocab=vocab, tokens=tokens, meta=meta)
