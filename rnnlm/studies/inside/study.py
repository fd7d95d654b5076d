"""The look-inside study of one trained workdir: cells, baselines, long-range structure.

`inspect` runs the model over a held-out text (a split of its corpus, or a file)
and writes to `out_dir`:

  inside.html      the page (`rnnlm.studies.inside.page`)
  inside.md        the tables below, with the command that made them
  saturation.png   gate saturation per layer
  brackets.png     closing brackets: model against the best n-gram, by distance
  errors.png       the model's errors, oracle by oracle (`errors.py`)
  inside.json      every number of the report

Tables: the top cells per text feature against a random-initialised model of the
same shape (chance) and across the run's checkpoints; the model's loss against
Kneser-Ney n-grams of order 1 to 20 trained on the same train split; closing
brackets by distance to their opener; and the model's errors broken down by the
2015 paper's sequence of oracles.
"""

from __future__ import annotations

import collections
import json
import math
import os

import ml_collections
import numpy as np
from absl import logging

from rnnlm.training import checkpoint
from rnnlm import config as config_lib
from rnnlm.data import corpora
from rnnlm.training import evaluation
from rnnlm.model import charlm as model_lib
from rnnlm.studies import plots
from rnnlm.studies import report
from rnnlm.errors import UserError
from rnnlm.model import activations
from rnnlm.studies.inside import errors as errors_lib
from rnnlm.studies.inside import features
from rnnlm.studies.inside import ngram
from rnnlm.studies.inside import page
from rnnlm.studies.inside import scores

LN2 = math.log(2.0)
# A feature "has a cell" when its best cell reaches FOUND_STRENGTH (|r| or
# |AUC - 0.5| * 2) and beats the best cell of a random-initialised model of the same
# shape by FOUND_MARGIN: untrained recurrent nets already follow some features (a
# newline or a capital letter drives their state), so strength alone is not learning.
FOUND_STRENGTH = 0.5
FOUND_MARGIN = 0.25
_PAIRS = {')': '(', '}': '{', ']': '['}
_DISTANCE_BINS = (1, 6, 11, 21, 41, 81, 161, 321, 10**9)


def check_cell(layer: int | None, unit: int | None, num_layers: int, hidden: int) -> None:
  if layer is None and unit is None:
    return
  if layer is None or unit is None:
    raise UserError('give both --layer and --unit to show a chosen cell')
  if not 1 <= layer <= num_layers:
    raise UserError(f'--layer must be in 1..{num_layers} for this model (got {layer})')
  if not 0 <= unit < hidden:
    raise UserError(f'--unit must be in 0..{hidden - 1} for this model (got {unit})')


def best_strengths(ranked: dict[str, list[scores.CellScore]]) -> dict[str, float]:
  return {f: cells[0].strength for f, cells in ranked.items() if cells}


def bracket_rows(text: str, model_prob: np.ndarray, ngram_prob: np.ndarray) -> list[dict]:
  """Closing brackets grouped by distance to their opener (stack matching).

  model_prob, ngram_prob: [len(text)] probability of the character at each position
  (position 0 unused). Returns one row per (closer, distance bin).
  """
  stacks = {o: [] for o in _PAIRS.values()}
  diffs = collections.defaultdict(list)
  for i, ch in enumerate(text):
    if ch in stacks:
      stacks[ch].append(i)
    elif ch in _PAIRS and stacks[_PAIRS[ch]]:
      opened = stacks[_PAIRS[ch]].pop()
      if i > 0:
        dist = i - opened
        b = next(k for k in range(len(_DISTANCE_BINS) - 1) if dist < _DISTANCE_BINS[k + 1])
        diffs[(ch, b)].append((model_prob[i], ngram_prob[i]))
  rows = []
  for (closer, b), pairs in sorted(diffs.items()):
    m, g = np.array(pairs).T
    lo, hi = _DISTANCE_BINS[b], _DISTANCE_BINS[b + 1] - 1
    rows.append({'closer': closer, 'distance': f'{lo}-{hi}' if hi < 10**8 else f'{lo}+',
                 'distance_mid': math.sqrt(lo * min(hi, lo * 4)), 'count': len(pairs),
                 'model_prob': float(m.mean()), 'ngram_prob': float(g.mean()),
                 'mean_diff': float((m - g).mean())})
  return rows


def inspect(workdir: str, out_dir: str, *, text_file: str = '', split: str = 'test',
            skip_unknown: bool = False, text_chars: int = 600_000, max_chars: int = 120_000,
            page_chars: int = 4000,
            top: int = 3, max_order: int = 20, layer: int | None = None,
            unit: int | None = None, compare: tuple[str, ...] = (),
            command: str = '') -> str:
  """Runs the study (module docstring) and returns the path of inside.md.

  `compare`: inside.json files of other models, whose errors errors.png shows beside
  this model's (the paper's small and large model).

  Raises:
    UserError: no run or checkpoint in `workdir`, a bad text, a bad cell index, a
      `compare` file that is not an inside.json.
  """
  others = {_model_label(n): n['errors'] for n in map(_read_inside, compare)}
  config = config_lib.load(workdir)
  model, vocab, step = checkpoint.load_model(workdir, 'best')
  m = config.model
  check_cell(layer, unit, m.num_layers, m.hidden_size)
  if split not in ('train', 'val', 'test'):
    raise UserError(f'--split must be train, val or test (got {split!r})')
  corpus = corpora.get_corpus(config.data)
  if corpus.vocab != vocab:
    raise UserError(f'the corpus of {workdir} has changed since training; inspect with a'
                    ' --text_file instead')
  parts = dict(zip(('train', 'val', 'test'), corpora.splits(corpus, config.data)))
  if text_file:
    tokens, source = evaluation.read_text(text_file, vocab, skip_unknown), text_file
  else:
    tokens, source = np.asarray(parts[split]), f'the {split} split'
  if len(tokens) <= max_order:
    raise UserError(f'the text has {len(tokens)} characters; give at least {max_order + 1}'
                    ' (the n-gram baselines need that much context)')
  os.makedirs(out_dir, exist_ok=True)
  tokens = tokens[:text_chars]  # The model runs one character at a time: bounded work.
  text = vocab.decode(tokens)
  scored_tokens = tokens[:max_chars]
  scored_text = text[:len(scored_tokens)]

  # The model over the whole text (predictions), and its states over the scored part.
  logging.info('Running the model over %d characters', len(tokens))
  preds = activations.run_over_text(model, tokens, keep_states=False)
  inside = activations.run_over_text(model, scored_tokens)
  feats = features.compute(scored_text)
  ranked = scores.score_all(inside.states, feats)
  # Chance: a random-initialised model of the same shape.
  random_model = model_lib.from_config(config, len(vocab))
  random_ranked = scores.score_all(
      activations.run_over_text(random_model, scored_tokens).states, feats)
  chance = best_strengths(random_ranked)
  # When each cell appears: the best strength per feature at every kept checkpoint.
  by_step = {}
  early_chars = min(len(scored_tokens), 20_000)
  for s in sorted(checkpoint.Checkpointer(workdir, read_only=True).all_steps()):
    mdl, _, _ = checkpoint.load_model(workdir, step=s)
    st = activations.run_over_text(mdl, scored_tokens[:early_chars]).states
    by_step[s] = best_strengths(scores.score_all(
        st, {f: v[:early_chars] for f, v in feats.items()}))
  sat = scores.saturation(inside.states)

  # N-gram baselines on the same train split.
  kn = ngram.KneserNey(np.asarray(parts['train']), len(vocab), max_order)
  val_probs, test_probs, ngram_probs = kn.next_char_probs_many(
      [np.asarray(parts['val']), np.asarray(parts['test']), tokens])
  split_losses = {'val': ngram.mean_loss(val_probs), 'test': ngram.mean_loss(test_probs)}
  text_losses = ngram.mean_loss(ngram_probs)
  del val_probs, test_probs
  best_order = int(np.argmin(split_losses['val'])) + 1
  model_prob = np.concatenate([[np.nan], preds.next_prob.astype(np.float64)])
  model_loss = float(preds.loss_nats.mean())
  results_path = os.path.join(workdir, 'results.json')
  run_results = {}
  if os.path.exists(results_path):
    with open(results_path) as f:
      run_results = json.load(f)
  brackets = bracket_rows(text, model_prob, ngram_probs[best_order - 1])
  errors = errors_lib.oracle_breakdown(
      text, model_prob, ngram_probs,
      errors_lib.word_counts(vocab.decode(np.asarray(parts['train'])[:5_000_000])))

  # Figures and the page.
  if sat:
    plots.saturation_figure(sat, os.path.join(out_dir, 'saturation.png'))
  if brackets:
    plots.bracket_figure(brackets, os.path.join(out_dir, 'brackets.png'))
  plots.error_figure({**others, _model_label({'model': m.to_dict()}): errors}, os.path.join(out_dir, 'errors.png'))
  top_cells = {f: cells[:top] for f, cells in ranked.items()}
  if layer is not None:
    pinned = scores.CellScore('chosen', 'count', layer - 1, 'h', unit, 0.0, 0.0)
    top_cells = {f'chosen: layer {layer} unit {unit} (h)': [pinned], **top_cells}
  title = f'{os.path.basename(os.path.abspath(workdir))}: {m.cell} {m.num_layers}x{m.hidden_size}'
  meta = (f'step {step}; {source}, first {min(page_chars, len(scored_text)):,} characters;'
          f' cells scored over {len(scored_text):,} characters')
  page.write(os.path.join(out_dir, 'inside.html'), page.page_data(
      title, meta, scored_text[:page_chars], inside.states, inside.loss_nats,
      inside.top_ids, inside.top_probs, vocab.chars, top_cells, chance))

  numbers = {'workdir': workdir, 'model': m.to_dict(), 'step': step, 'source': source, 'chars': len(tokens),
             'scored_chars': len(scored_tokens), 'model_loss_on_text': model_loss,
             'run_results': run_results, 'best_order': best_order,
             'ngram_val_loss': split_losses['val'].tolist(),
             'ngram_test_loss': split_losses['test'].tolist(),
             'ngram_loss_on_text': text_losses.tolist(),
             'top_cells': {f: [vars(c) for c in cells[:top]] for f, cells in ranked.items()},
             'chance': chance, 'by_step': by_step, 'brackets': brackets, 'errors': errors,
             'saturation': {f'layer {l + 1} {n}': {'left_mean': float(a.mean()), 'right_mean': float(b.mean()),
                                         'right_over_half': float((b > 0.5).mean()),
                                         'left_over_half': float((a > 0.5).mean())}
                            for (l, n), (a, b) in sat.items()}}
  with open(os.path.join(out_dir, 'inside.json'), 'w') as f:
    json.dump(numbers, f, indent=1)
  return write_report(out_dir, numbers, command)


def _model_label(n: dict) -> str:
  m = n['model']
  return f"{m['cell']} {m['num_layers']}x{m['hidden_size']}"


def _read_inside(path: str) -> dict:
  try:
    with open(path) as f:
      n = json.load(f)
    if 'oracles' not in n['errors'] or 'model' not in n:
      raise KeyError('oracles')
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise UserError(f'--compare_with={path} is not an inside.json written by look_inside'
                    f' ({type(e).__name__}: {e}); run look_inside on that model first') from None
  return n


def has_cell(strength: float, chance: float | None) -> bool:
  return strength >= FOUND_STRENGTH and strength - (chance or 0.0) >= FOUND_MARGIN


def write_report(out_dir: str, n: dict, command: str = '') -> str:
  """inside.md from the numbers of inside.json (so it can be rewritten from them)."""
  return report.write(os.path.join(out_dir, 'inside.md'), _report_lines(n, command))


def _report_lines(n: dict, command: str) -> list[str]:
  m = ml_collections.ConfigDict(n['model'])
  chance = n['chance']
  lines = [f"# Inside {os.path.basename(n['workdir'])}: {m.cell} {m.num_layers}x{m.hidden_size},"
           f" step {n['step']}", '', *report.made_by(command),
           f"Text: the first {n['chars']:,} characters of {n['source']}; cells (h and c of every layer)"
           f" scored over the first {n['scored_chars']:,}. Open `inside.html` to see them.", '',
           '## Cells that track features of the text', '',
           'Strength is |r| for counts and |AUC - 0.5| x 2 for on/off features (0: none,'
           ' 1: perfect). Chance is the best cell of a random-initialised model of the same'
           f' shape. A feature has a cell here when its best reaches {FOUND_STRENGTH} and'
           f' beats chance by {FOUND_MARGIN}.', '']
  rows = []
  for f, cells in n['top_cells'].items():
    best = scores.CellScore(**cells[0])
    rows.append([f, 'r' if best.kind == 'count' else 'AUC',
                 ', '.join(f'{scores.CellScore(**c).cell} ({c["score"]:.2f})' for c in cells),
                 best.strength, chance.get(f),
                 'yes' if has_cell(best.strength, chance.get(f)) else 'no'])
  lines += report.table(['feature', 'score', 'top cells (score)', 'strength', 'chance',
                         'has a cell'], rows, 3)
  steps = sorted(n['by_step'], key=int)  # int keys, or str ones read back from JSON.
  if steps:
    lines += ['', '## When the cells appear', '',
              'Best strength per feature at each kept checkpoint (first 20,000 characters).', '']
    feats = list(n['top_cells'])
    lines += report.table(['step', *feats], [[s, *(n['by_step'][s].get(f) for f in feats)]
                                             for s in steps] +
                          [['random init', *(chance.get(f) for f in feats)]], 2)
  lines += ['', '## Against n-gram models', '',
            f"Interpolated Kneser-Ney character n-grams trained on the same train split. Best"
            f" order on the validation split: {n['best_order']}.", '']
  rr = n['run_results']
  rows = [[f"{m.cell} {m.num_layers}x{m.hidden_size} (this run)", rr.get('best_val_loss'),
           rr.get('test_loss'), n['model_loss_on_text']]]
  rows += [[f'{k + 1}-gram', v, t, x] for k, (v, t, x) in enumerate(zip(
      n['ngram_val_loss'], n['ngram_test_loss'], n['ngram_loss_on_text']))]
  lines += report.table(['model', 'val nats/char', 'test nats/char', 'this text nats/char'],
                        rows, 4)
  lines += ['', 'Bits per character are nats / ln 2 (divide by 0.693).']
  if n['brackets']:
    lines += ['', '## Closing brackets by distance to their opener', '',
              f"Mean probability of the closing bracket under the model and under the"
              f" {n['best_order']}-gram.", '']
    lines += report.table(['closer', 'distance', 'count', 'model', 'n-gram', 'difference'],
                          [[r['closer'], r['distance'], r['count'], r['model_prob'],
                            r['ngram_prob'], r['mean_diff']] for r in n['brackets']], 3)
    lines += ['', '![brackets](brackets.png)']
  e = n['errors']
  lines += ['', '## The model\'s errors, oracle by oracle', '',
            f"Characters whose true value gets probability under {errors_lib.ERROR_BELOW} from the"
            f" model: {e['errors']:,} of {e['characters']:,} ({100 * e['error_rate']:.1f}%)."
            ' Each oracle removes the errors it would fix that the ones above it left'
            ' (definitions in `rnnlm/studies/inside/errors.py`).', '']
  lines += report.table(['oracle', 'errors removed', 'share of errors'],
                        [[r['oracle'], r['errors'], r['share']] for r in e['oracles']], 3)
  lines += ['', '![errors](errors.png)']
  if n['saturation']:
    lines += ['', '## Gate saturation', '',
              'Per gate, the mean fraction of characters at which a unit is left-saturated'
              ' (< 0.1) or right-saturated (> 0.9), and the share of units saturated more'
              ' than half the time.', '']
    lines += report.table(['gate', 'left', 'right', 'units mostly left',
                           'units mostly right'],
                          [[k, v['left_mean'], v['right_mean'], v['left_over_half'],
                            v['right_over_half']] for k, v in n['saturation'].items()], 3)
    lines += ['', '![saturation](saturation.png)']
  return lines
