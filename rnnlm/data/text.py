"""Characters and text files: the sorted character `Vocab`, reading UTF-8 text in
chunks with the errors a user can cause caught at the edge, and atomic file writes."""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import os
from typing import Iterable, Iterator

import numpy as np

from rnnlm.errors import UserError

_CHUNK_BYTES = 1 << 22  # 4 MiB per read while streaming a file.


# ----------------------------------------------------------------------------
# Vocabulary


@dataclasses.dataclass(frozen=True)
class Vocab:
  """A sorted character vocabulary; token id i is `chars[i]`."""

  chars: tuple[str, ...]

  def __post_init__(self):
    if list(self.chars) != sorted(set(self.chars)):
      raise ValueError('Vocab chars must be sorted and unique.')
    object.__setattr__(self, '_index', {c: i for i, c in enumerate(self.chars)})

  @classmethod
  def from_text(cls, text: str) -> 'Vocab':
    return cls(tuple(sorted(set(text))))

  def __len__(self) -> int:
    return len(self.chars)

  @property
  def dtype(self) -> np.dtype:
    """Smallest unsigned dtype that holds every token id."""
    return np.dtype(np.uint8 if len(self.chars) <= 256 else np.uint16)

  def unknown_chars(self, text: str) -> list[str]:
    return sorted(set(text) - set(self.chars))

  def encode(self, text: str) -> np.ndarray:
    """Text -> int32 ids [len(text)]. Raises UserError naming unknown chars."""
    unknown = self.unknown_chars(text)
    if unknown:
      raise UserError(
          f'characters not in the vocabulary: {" ".join(repr(c) for c in unknown)};'
          ' use only characters that occur in the training corpus')
    index = self._index  # pytype: disable=attribute-error
    return np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))

  def decode(self, ids: Iterable[int]) -> str:
    return ''.join(self.chars[int(i)] for i in ids)

  def to_json(self) -> str:
    return json.dumps({'chars': list(self.chars)}, ensure_ascii=True)

  @classmethod
  def from_json(cls, s: str) -> 'Vocab':
    return cls(tuple(json.loads(s)['chars']))

  def save(self, path: str) -> None:
    atomic_write(path, self.to_json())

  @classmethod
  def load(cls, path: str) -> 'Vocab':
    with open(path) as f:
      return cls.from_json(f.read())


def atomic_write(path: str, content: str | bytes) -> None:
  """Writes `content` to `path` so that a reader (or a killed writer) sees the old
  file or the new one, never a part."""
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'wb' if isinstance(content, bytes) else 'w') as f:
    f.write(content)
  os.replace(tmp, path)


def file_sha256(path: str) -> str:
  """The SHA-256 of a file's bytes, read in blocks."""
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(_CHUNK_BYTES), b''):
      h.update(block)
  return h.hexdigest()


# ----------------------------------------------------------------------------
# Reading text files, with the errors a user can cause caught at the edge.


def iter_text_chunks(path: str) -> Iterator[str]:
  """Yields the UTF-8 text of `path` in chunks, never the whole file at once.

  Raises:
    UserError: the file is missing, unreadable, binary, or not UTF-8 (the message
      names the byte offset of the first bad byte).
  """
  if not os.path.isfile(path):
    raise UserError(f'input file not found: {path}; check the path')
  decoder = codecs.getincrementaldecoder('utf-8')(errors='strict')
  offset = 0
  try:
    f = open(path, 'rb')
  except OSError as e:
    raise UserError(f'cannot read {path}: {e.strerror}; check its permissions') from e
  with f:
    while True:
      chunk = f.read(_CHUNK_BYTES)
      if not chunk:
        break
      nul = chunk.find(b'\x00')
      if nul >= 0:
        raise UserError(
            f'{path} looks binary (NUL byte at offset {offset + nul}); give a text file')
      try:
        text = decoder.decode(chunk)
      except UnicodeDecodeError as e:
        bad = offset + e.start
        line = 1 + _count_newlines_before(path, bad)
        raise UserError(
            f'{path} is not UTF-8: bad byte 0x{chunk[e.start]:02x} at offset {bad}'
            f' (line {line}); convert it, e.g. iconv -f latin1 -t utf-8') from e
      offset += len(chunk)
      if text:
        yield text
    try:
      tail = decoder.decode(b'', final=True)
    except UnicodeDecodeError as e:
      raise UserError(
          f'{path} is not UTF-8: truncated character at its end; convert it') from e
    if tail:
      yield tail


def _count_newlines_before(path: str, offset: int) -> int:
  with open(path, 'rb') as f:
    return f.read(offset).count(b'\n')
