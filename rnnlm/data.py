"""Characters to batches: vocabulary, prepared token files, splits, batch streams.

The data path (docs/design.md has the whole of it):

  text files -> `prepare()` (two streaming passes: vocabulary, then tokens)
    -> `<cache>/vocab.json`, `<cache>/tokens.bin` (uint8 or uint16), `<cache>/meta.json`
  -> `load_prepared()` -> `Vocab` + a read-only numpy memmap of token ids
  -> `split()` -> contiguous train / val / test views (no copy)
  -> `BatchStream`: `batch_size` parallel contiguous streams read in windows of
     `seq_length`, the char-rnn way (truncated BPTT, state carried between windows).

Nothing here holds a whole corpus in memory as a Python string, so corpora larger
than RAM work.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import os
import shutil
from typing import Iterable, Iterator, Sequence

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


def atomic_write(path: str, text: str) -> None:
  """Writes `text` to `path` so that a reader (or a killed writer) sees the old
  file or the new one, never a part."""
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


def atomic_write_bytes(path: str, raw: bytes) -> None:
  """`atomic_write` for bytes."""
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'wb') as f:
    f.write(raw)
  os.replace(tmp, path)


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
  with open(os.path.join(tmp_dir, 'tokens.bin'), 'wb') as f:
    for chunk in chunks_fn():
      ids = np.fromiter((table[c] for c in chunk), dtype=vocab.dtype, count=len(chunk))
      f.write(ids.tobytes())
      n += len(chunk)
  vocab.save(os.path.join(tmp_dir, 'vocab.json'))
  meta = dict(provenance or {})
  meta.update(num_tokens=n, dtype=vocab.dtype.name, vocab_size=len(vocab),
              text_sha256=text_hash.hexdigest())
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


def load_prepared(out_dir: str) -> Corpus:
  with open(os.path.join(out_dir, 'meta.json')) as f:
    meta = json.load(f)
  vocab = Vocab.load(os.path.join(out_dir, 'vocab.json'))
  if meta['num_tokens'] == 0:
    raise UserError(f'the corpus in {out_dir} is empty; give a non-empty text')
  tokens = np.memmap(os.path.join(out_dir, 'tokens.bin'), dtype=meta['dtype'],
                     mode='r', shape=(meta['num_tokens'],))
  return Corpus(vocab=vocab, tokens=tokens, meta=meta)


# ----------------------------------------------------------------------------
# Splits


def split(tokens: np.ndarray, fractions: Sequence[float] = (0.9, 0.05, 0.05)
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Contiguous train / val / test views of `tokens`, in that order.

  Deterministic: the first `fractions[0]` of the corpus is train, the next
  `fractions[1]` val, the rest test. Views, not copies (memmaps stay memmaps).
  """
  if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
    raise UserError(f'split fractions {tuple(fractions)} must be three non-negative'
                    ' numbers that sum to 1, e.g. 0.9,0.05,0.05')
  n = len(tokens)
  n_train = int(round(n * fractions[0]))
  n_val = int(round(n * fractions[1]))
  return tokens[:n_train], tokens[n_train:n_train + n_val], tokens[n_train + n_val:]


# ----------------------------------------------------------------------------
# Batch streams


@dataclasses.dataclass
class Batch:
  """One window of all streams.

  inputs:  [batch, time] int32 token ids.
  targets: [batch, time] int32, the next character of each input.
  mask:    [batch, time] float32, 1 where the target is real, 0 in padding (only
           the last window of an epoch can be padded).
  reset:   True when this window starts an epoch: the carry must be zeroed first.
  """

  inputs: np.ndarray
  targets: np.ndarray
  mask: np.ndarray
  reset: bool


class BatchStream:
  """The char-rnn batch order, with resumable position.

  The `N` tokens of a split give `N - 1` (input, target) pairs. These are cut into
  `batch_size` contiguous streams (lengths differ by at most one) that are read
  side by side in windows of `seq_length`. Stream b of window w continues exactly
  where stream b of window w-1 ended, so the recurrent state carried from one
  window to the next is the state of the preceding text (truncated BPTT). Every
  pair is used exactly once per epoch; the last window is padded and masked when
  the streams do not divide into whole windows.

  The position (`epoch`, `window`) is all the state there is: `state_dict()` and
  `load_state_dict()` save and restore it.
  """

  def __init__(self, tokens: np.ndarray, batch_size: int, seq_length: int):
    if batch_size < 1 or seq_length < 1:
      raise UserError('batch_size and seq_length must be positive')
    num_pairs = len(tokens) - 1
    if num_pairs < batch_size * seq_length:
      raise UserError(
          f'the split has {len(tokens)} characters, fewer than one batch window'
          f' (batch_size {batch_size} x seq_length {seq_length} + 1); use a larger'
          ' corpus or a smaller batch_size/seq_length')
    self.tokens = tokens
    self.batch_size = batch_size
    self.seq_length = seq_length
    base, extra = divmod(num_pairs, batch_size)
    self.stream_lengths = np.array([base + (b < extra) for b in range(batch_size)])
    self.stream_starts = np.concatenate([[0], np.cumsum(self.stream_lengths)[:-1]])
    self.windows_per_epoch = -(-int(self.stream_lengths.max()) // seq_length)
    self.epoch = 0
    self.window = 0

  def __len__(self) -> int:
    return self.windows_per_epoch

  def state_dict(self) -> dict:
    return {'epoch': int(self.epoch), 'window': int(self.window)}

  def load_state_dict(self, state: dict) -> None:
    self.epoch, self.window = int(state['epoch']), int(state['window'])

  def window_at(self, window: int) -> Batch:
    """The batch of window `window` of an epoch (0-based), without moving."""
    b, t = self.batch_size, self.seq_length
    offsets = window * t + np.arange(t + 1)  # [t + 1]
    # Positions past a stream's end are clamped and masked out.
    valid = offsets[None, :-1] < self.stream_lengths[:, None]  # [b, t]
    pos = self.stream_starts[:, None] + np.minimum(offsets[None, :],
                                                   self.stream_lengths[:, None])
    pos = np.minimum(pos, len(self.tokens) - 1)
    chunk = np.asarray(self.tokens[pos.ravel()], dtype=np.int32).reshape(b, t + 1)
    return Batch(inputs=chunk[:, :-1], targets=chunk[:, 1:],
                 mask=valid.astype(np.float32), reset=(window == 0))

  def next(self) -> Batch:
    """The next window; advances the position and wraps into the next epoch."""
    batch = self.window_at(self.window)
    self.window += 1
    if self.window == self.windows_per_epoch:
      self.window = 0
      self.epoch += 1
    return batch

  def epoch_batches(self) -> Iterator[Batch]:
    """All windows of one epoch in order (for evaluation); position unchanged."""
    for w in range(self.windows_per_epoch):
      yield self.window_at(w)
