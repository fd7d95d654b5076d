"""What a researcher would otherwise train, in PyTorch, on rnnlm's data and clock.

  * `char_rnn`: the char-rnn recipe with `nn.LSTM` (one-hot input, Adam 2e-3,
    gradient clipping at 5, batches of 50 streams x 100 characters, the state carried
    from window to window and zeroed at each epoch start);
  * `transformer`: a nanoGPT-style character transformer (pre-norm blocks, causal
    `scaled_dot_product_attention`, AdamW with warmup and cosine decay, random
    windows of `context` characters).

Both read the corpus, vocabulary and train / val / test split that rnnlm's config
gives, train for a budget of minutes of training time (evaluation not counted),
and evaluate the whole validation split at fixed marks of training time. The output
(metrics.jsonl, results.json) has the fields of an rnnlm workdir, so the same
figure puts them side by side. Needs the `bench` extra (torch).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from rnnlm.data import corpora
from rnnlm import data
from rnnlm.training import periodic

LN2 = math.log(2.0)


def _torch():
  import torch
  return torch


def build_char_rnn(vocab: int, hidden: int, layers: int, dropout: float):
  torch = _torch()
  nn = torch.nn

  class CharRNN(nn.Module):
    def __init__(self):
      super().__init__()
      self.vocab = vocab
      self.lstm = nn.LSTM(vocab, hidden, layers, dropout=dropout if layers > 1 else 0.0,
                          batch_first=True)
      self.drop = nn.Dropout(dropout)
      self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens, state):
      x = torch.nn.functional.one_hot(tokens, self.vocab).float()
      y, state = self.lstm(x, state)
      return self.head(self.drop(y)), state

  return CharRNN()


def build_transformer(vocab: int, d: int, layers: int, heads: int, context: int, dropout: float):
  torch = _torch()
  nn = torch.nn
  F = torch.nn.functional

  class Block(nn.Module):
    def __init__(self):
      super().__init__()
      self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
      self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
      self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
      self.drop = nn.Dropout(dropout)

    def forward(self, x):
      b, t, _ = x.shape
      q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
      q, k, v = (z.view(b, t, heads, d // heads).transpose(1, 2) for z in (q, k, v))
      y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                         dropout_p=dropout if self.training else 0.0)
      x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))
      return x + self.drop(self.mlp(self.ln2(x)))

  class GPT(nn.Module):
    def __init__(self):
      super().__init__()
      self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
      self.blocks = nn.ModuleList([Block() for _ in range(layers)])
      self.ln_f, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)
      self.drop = nn.Dropout(dropout)
      for name, p in self.named_parameters():
        if p.dim() == 2:
          std = 0.02 / math.sqrt(2 * layers) if name.endswith(('proj.weight', 'mlp.2.weight')) else 0.02
          nn.init.normal_(p, 0.0, std)

    def forward(self, tokens, state=None):
      t = tokens.shape[1]
      x = self.drop(self.tok(tokens) + self.pos(torch.arange(t, device=tokens.device)))
      for blk in self.blocks:
        x = blk(x)
      return self.head(self.ln_f(x)), None

  return GPT()


def _splits(data_config):
  corpus = corpora.get_corpus(data_config)
  train, val, _ = corpora.splits(corpus, data_config)
  return corpus.vocab, np.asarray(train, np.int64), np.asarray(val, np.int64)


def eval_windows(length: int, context: int) -> tuple[list[int], list[int]]:
  """Windows over a text of `length` characters for a model of `context`: their starts,
  and in each the first position scored. Windows overlap by half, and each scores only
  the characters not scored before, so that every character after the first is
  predicted once, and all but the first half-window's with at least `context // 2`
  characters before them (rnnlm's transformer reads streams with a full context)."""
  if length < context + 1:
    raise ValueError(f'a text of {length} characters is shorter than a window of {context} + 1')
  stride = max(1, context // 2)
  starts = list(range(0, length - context, stride))
  if starts[-1] != length - 1 - context:
    starts.append(length - 1 - context)
  first, scored_to = [], 0  # Targets 1..scored_to (absolute indices) are done.
  for s in starts:
    j = max(0, scored_to - s)  # Window position j predicts the target s + j + 1.
    first.append(j)
    scored_to = s + context
  return starts, first


def _evaluate(model, kind: str, val: np.ndarray, batch: int, seq: int, context: int) -> float:
  """Loss over the whole validation split: char-rnn as 50 carried streams (as
  rnnlm evaluates); the transformer in windows overlapping by half (`eval_windows`)."""
  torch = _torch()
  model.eval()
  total, count = 0.0, 0
  with torch.no_grad():
    if kind == 'char_rnn':
      stream = data.BatchStream(val, batch, seq)
      state = None
      for b in stream.epoch_batches():
        logits, state = model(torch.from_numpy(b.inputs.astype(np.int64)), state)
        ce = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), torch.from_numpy(b.targets.astype(np.int64)).reshape(-1),
            reduction='none')
        mask = torch.from_numpy(b.mask.astype(np.float32)).reshape(-1)
        total += float((ce * mask).sum())
        count += float(mask.sum())
    else:
      starts, first = eval_windows(len(val), context)
      for lo in range(0, len(starts), batch):
        idx = np.asarray(starts[lo:lo + batch])[:, None] + np.arange(context)[None]
        logits, _ = model(torch.from_numpy(val[idx]))
        ce = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), torch.from_numpy(val[idx + 1]).reshape(-1),
            reduction='none').reshape(idx.shape)
        scored = torch.from_numpy(np.arange(context)[None] >= np.asarray(first[lo:lo + batch])[:, None])
        total += float((ce * scored).sum())
        count += int(scored.sum())
  model.train()
  return total / count


def train_peer(kind: str, data_config, workdir: str, *, minutes: float, hidden: int = 256,
               layers: int = 2, heads: int = 4, context: int = 128, dropout: float = 0.0,
               batch: int = 50, seq: int = 100, lr: float | None = None,
               eval_every_minutes: float = 2.5, marks=(5, 15, 30), seed: int = 0) -> dict:
  """Trains a PyTorch peer for `minutes` of training time; writes and returns results."""
  torch = _torch()
  torch.manual_seed(seed)
  rng = np.random.default_rng(seed)
  vocab, train, val = _splits(data_config)
  v = len(vocab)
  if kind == 'char_rnn':
    model = build_char_rnn(v, hidden, layers, dropout)
    opt = torch.optim.Adam(model.parameters(), lr=lr or 2e-3)
    stream = data.BatchStream(train, batch, seq)
    chars_per_step = batch * seq
  elif kind == 'transformer':
    model = build_transformer(v, hidden, layers, heads, context, dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=lr or 1e-3, betas=(0.9, 0.99),
                            weight_decay=0.1)
    chars_per_step = batch * context
  else:
    raise ValueError(kind)
  num_params = sum(p.numel() for p in model.parameters())
  os.makedirs(workdir, exist_ok=True)
  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  open(metrics_path, 'w').close()
  budget_s, train_s, step, state = minutes * 60.0, 0.0, 0, None
  next_eval = eval_every_minutes * 60.0
  eval_marks = sorted({m * 60.0 for m in marks if m * 60.0 < budget_s} | {budget_s})
  step_time, records = None, []
  while train_s < budget_s:
    start = periodic.now()  # The clock rnnlm's own runs read (tests replace it).
    if kind == 'char_rnn':
      b = stream.next()
      if b.reset:
        state = None
      logits, state = model(torch.from_numpy(b.inputs.astype(np.int64)), state)
      state = tuple(s.detach() for s in state)
      targets = torch.from_numpy(b.targets.astype(np.int64))
      mask = torch.from_numpy(b.mask.astype(np.float32))
      ce = torch.nn.functional.cross_entropy(logits.reshape(-1, v), targets.reshape(-1),
                                             reduction='none')
      loss = (ce * mask.reshape(-1)).sum() / mask.sum()
    else:
      # Warmup, then cosine decay over the steps the budget allows at the measured rate.
      total_steps = int(budget_s / step_time) if step_time else 10 ** 9
      warm = min(100, max(total_steps // 10, 1))
      frac = min(step / max(total_steps, 1), 1.0)
      scale = (step + 1) / warm if step < warm else 0.1 + 0.45 * (1 + math.cos(math.pi * frac))
      for group in opt.param_groups:
        group['lr'] = (lr or 1e-3) * scale
      starts = rng.integers(0, len(train) - context - 1, batch)
      x = torch.from_numpy(np.stack([train[s:s + context] for s in starts]))
      y = torch.from_numpy(np.stack([train[s + 1:s + context + 1] for s in starts]))
      logits, _ = model(x)
      loss = torch.nn.functional.cross_entropy(logits.reshape(-1, v), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0 if kind == 'char_rnn' else 1.0)
    opt.step()
    step += 1
    dt = periodic.now() - start
    train_s += dt
    if step == 20:  # Steady-state rate, for the transformer's schedule.
      step_time = train_s / step
    if train_s >= next_eval or train_s >= budget_s or any(
        train_s >= m > train_s - dt for m in eval_marks):
      val_loss = _evaluate(model, kind, val, batch, seq, context)
      record = {'step': step, 'train_time_s': round(train_s, 2), 'val_loss': val_loss,
                'val_bpc': val_loss / LN2, 'train_loss': float(loss.detach()),
                'chars_per_sec': round(step * chars_per_step / train_s, 1)}
      records.append(record)
      with open(metrics_path, 'a') as f:
        f.write(json.dumps(record) + '\n')
      next_eval = train_s + eval_every_minutes * 60.0
  results = {'kind': kind, 'num_params': num_params, 'final_step': step,
             'train_time_s': round(train_s, 2), 'chars_per_sec': records[-1]['chars_per_sec'],
             'best_val_loss': min(r['val_loss'] for r in records),
             'hidden': hidden, 'layers': layers, 'torch': torch.__version__,
             'threads': torch.get_num_threads()}
  for m in marks:  # The model as it was when the mark was passed.
    seen = [r['val_loss'] for r in records if r['train_time_s'] >= m * 60.0]
    results[f'val_loss_at_{m}min'] = seen[0] if seen and m * 60.0 <= budget_s else None
  data.atomic_write(os.path.join(workdir, 'results.json'), json.dumps(results, indent=2))
  return results
