import json
import os

import numpy as np
import pytest

from rnnlm import data
from rnnlm.errors import UserError


def test_vocab_sorted_roundtrip_and_dtype():
  v = data.Vocab.from_text('hello world')
  assert v.chars == (' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w')
  ids = v.encode('hold')
  assert ids.tolist() == [3, 5, 4, 1]
  assert v.decode(ids) == 'hold'
  assert data.Vocab.from_json(v.to_json()) == v
  assert v.dtype == np.uint8
  big = data.Vocab(tuple(sorted(chr(0x100 + i) for i in range(300))))
  assert big.dtype == np.uint16


def test_encode_names_unknown_chars():
  v = data.Vocab.from_text('abc')
  with pytest.raises(UserError, match=r"'x'.*'z'"):
    v.encode('abxz')


@pytest.mark.parametrize('text', ['To be, or not to be.\n' * 50, ''.join(chr(0x4e00 + i % 400) for i in range(2000))])
def test_prepare_and_load_memmap(tmp_path, text):
  out = str(tmp_path / 'prep')
  # Several chunks, as when streaming a large file.
  chunks = [text[i:i + 97] for i in range(0, len(text), 97)]
  data.prepare(lambda: iter(chunks), out, provenance={'name': 'x'})
  corpus = data.load_prepared(out)
  assert isinstance(corpus.tokens, np.memmap)
  assert corpus.tokens.dtype == (np.uint8 if len(set(text)) <= 256 else np.uint16)
  assert corpus.vocab.decode(corpus.tokens) == text
  assert corpus.meta['num_tokens'] == len(text)


def test_split_is_contiguous_and_complete():
  tokens = np.arange(1000)
  train, val, test = data.split(tokens, (0.9, 0.05, 0.05))
  assert (len(train), len(val), len(test)) == (900, 50, 50)
  np.testing.assert_array_equal(np.concatenate([train, val, test]), tokens)
  with pytest.raises(UserError):
    data.split(tokens, (0.5, 0.1, 0.1))


@pytest.mark.parametrize('n,b,t', [(1003, 4, 7), (101, 5, 20), (64, 3, 21), (50, 7, 7)])
def test_batch_stream_sees_every_char_once_per_epoch(n, b, t):
  tokens = np.arange(n, dtype=np.int32)  # token value == position.
  stream = data.BatchStream(tokens, b, t)
  seen_inputs, per_stream = [], [[] for _ in range(b)]
  for w in range(len(stream)):
    batch = stream.next()
    assert batch.reset == (w == 0)
    valid = batch.mask.astype(bool)
    # Each target is the character after its input.
    np.testing.assert_array_equal(batch.targets[valid], batch.inputs[valid] + 1)
    # Padding only at the end of a stream: a valid step never follows a padded one.
    assert np.all(np.diff(batch.mask, axis=1) <= 0)
    seen_inputs.extend(batch.inputs[valid].tolist())
    for s in range(b):
      per_stream[s].extend(batch.inputs[s][valid[s]].tolist())
  assert sorted(seen_inputs) == list(range(n - 1))  # Every pair exactly once.
  for s in range(b):  # Each stream is one contiguous run of the text.
    assert per_stream[s] == list(range(per_stream[s][0], per_stream[s][0] + len(per_stream[s])))
  lengths = [len(p) for p in per_stream]
  assert max(lengths) - min(lengths) <= 1
  assert stream.epoch == 1 and stream.window == 0
  assert stream.next().reset


def test_batch_stream_position_resumes():
  tokens = np.arange(500, dtype=np.int32)
  a = data.BatchStream(tokens, 3, 10)
  for _ in range(23):
    a.next()
  b = data.BatchStream(tokens, 3, 10)
  b.load_state_dict(json.loads(json.dumps(a.state_dict())))
  for _ in range(30):
    x, y = a.next(), b.next()
    np.testing.assert_array_equal(x.inputs, y.inputs)
    assert x.reset == y.reset


def test_batch_stream_too_short():
  with pytest.raises(UserError, match='fewer than one batch window'):
    data.BatchStream(np.arange(50), 5, 10)


def test_text_errors(tmp_path):
  with pytest.raises(UserError, match='not found'):
    list(data.iter_text_chunks(str(tmp_path / 'missing.txt')))
  binary = tmp_path / 'b.bin'
  binary.write_bytes(b'abc\x00\x01\x02')
  with pytest.raises(UserError, match='binary'):
    list(data.iter_text_chunks(str(binary)))
  latin = tmp_path / 'l.txt'
  latin.write_bytes(b'line one\nna\xefve\n')
  with pytest.raises(UserError, match=r'offset 11 \(line 2\)'):
    list(data.iter_text_chunks(str(latin)))
  empty = tmp_path / 'e.txt'
  empty.write_text('')
  with pytest.raises(UserError, match='empty'):
    data.prepare(lambda: data.iter_text_chunks(str(empty)), str(tmp_path / 'out'))
  assert not os.path.exists(tmp_path / 'out')
