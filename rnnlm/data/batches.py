"""Token ids to training windows: contiguous train / val / test splits, and the
char-rnn batch order (`BatchStream`: parallel contiguous streams read in windows,
state carried between windows, position resumable)."""

from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import numpy as np

from rnnlm.errors import UserError


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
