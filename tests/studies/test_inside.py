"""Looking inside: activations, text features, cell scores, n-gram baselines."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rnnlm.model import activations
from rnnlm.studies.inside import features
from rnnlm.studies.inside import ngram
from rnnlm.studies.inside import scores
from rnnlm.model import CharLM

# ----------------------------------------------------------------------------
# Features, on hand-written text.


def test_line_position_and_indent():
  text = 'ab\n\tc\n  d'
  np.testing.assert_array_equal(features.line_position(text), [1, 2, 0, 1, 2, 0, 1, 2, 3])
  np.testing.assert_array_equal(features.indent_depth(text), [0, 0, 0, 8, 8, 8, 2, 2, 2])


def test_quotes_and_speaker_lines():
  text = 'He said "hi" now\nKING LEAR.\nGo.'
  q = features.inside_quotes(text)
  assert ''.join(c for c, on in zip(text, q) if on) == '"hi"'
  s = features.speaker_line(text)
  assert ''.join(c for c, on in zip(text, s) if on) == 'KING LEAR.Go.'


def test_c_comments_strings_and_depths():
  text = 'f(a, "(}") /* { */ {\n  g(\'"\'); // )\n}'
  com = features.inside_comment(text)
  lit = features.inside_string(text)
  assert ''.join(c for c, on in zip(text, com) if on) == '/* { */// )'
  assert ''.join(c for c, on in zip(text, lit) if on) == '"(}"\'"\''
  paren = features.paren_depth(text)
  brace = features.brace_depth(text)
  # Brackets in literals and comments do not count.
  assert paren[text.index('a')] == 1 and paren[text.index(' /*')] == 0
  assert brace[text.index('g')] == 1 and brace[-1] == 0
  assert paren[text.index('\'"\'')] == 1 and paren[text.index(';')] == 0
  esc = 'x = "a\\"b"; y'
  lit = features.inside_string(esc)
  assert ''.join(c for c, on in zip(esc, lit) if on) == '"a\\"b"'


def test_line_end_near_and_vowels():
  text = 'abcdefg\nxy\n'
  near = features.line_end_near(text, within=2)
  assert ''.join(c for c, on in zip(text, near) if on) == 'fgxy'
  assert features.vowel('bAt').tolist() == [False, True, False]
  assert set(features.compute('a"b"\n')) == set(features.KINDS)


# ----------------------------------------------------------------------------
# Scores: a synthetic activation that copies a feature scores near 1; noise near chance.


def test_scores_find_a_cell_that_copies_a_feature():
  rng = np.random.default_rng(0)
  text = ''.join(rng.choice(list('ab "\n(x)'), 3000))
  feats = features.compute(text, ['line_position', 'inside_quotes'])
  noise = rng.normal(size=(len(text), 8))
  acts = noise.copy()
  acts[:, 3] = feats['line_position'] * 0.5 + 0.01 * rng.normal(size=len(text))
  acts[:, 5] = -feats['inside_quotes'].astype(float) + 0.01 * rng.normal(size=len(text))
  ranked = scores.score_all({(0, 'h'): acts.astype(np.float16)}, feats)
  top_pos, top_q = ranked['line_position'][0], ranked['inside_quotes'][0]
  assert (top_pos.unit, top_q.unit) == (3, 5)
  assert top_pos.score > 0.99 and top_q.score < 0.01  # AUC near 0: fires for "off".
  assert top_q.strength > 0.98
  # Pure noise: near chance (|r| and |AUC - 0.5| small for 3000 samples).
  assert ranked['line_position'][1].strength < 0.1
  assert ranked['inside_quotes'][1].strength < 0.1


def test_auc_and_pearson_against_direct_formulas():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(200, 3)).round(1)  # With ties.
  pos = rng.random(200) < 0.3
  want = [np.mean([(x > y) + 0.5 * (x == y) for x in a[pos, j] for y in a[~pos, j]])
          for j in range(3)]
  np.testing.assert_allclose(scores.roc_auc(a, pos), want, rtol=1e-12)
  f = rng.normal(size=200)
  np.testing.assert_allclose(scores.pearson(a, f), [np.corrcoef(a[:, j], f)[0, 1]
                                                    for j in range(3)], rtol=1e-10)


def test_saturation_fractions():
  acts = np.array([[0.05, 0.5], [0.95, 0.5], [0.99, 0.01], [0.5, 0.5]], np.float16)
  sat = scores.saturation({(1, 'f'): acts, (1, 'h'): acts})
  left, right = sat[(1, 'f')]
  np.testing.assert_allclose(left, [0.25, 0.25])
  np.testing.assert_allclose(right, [0.5, 0.0])
  assert (1, 'h') not in sat  # Only sigmoid gates.


# ----------------------------------------------------------------------------
# Kneser-Ney n-grams.


def test_kneser_ney_hand_worked_bigram():
  # Train "abab": c(ab) = 2, c(ba) = 1, so D = n1 / (n1 + 2 n2) = 1/3. After 'b':
  # P(a|b) = (1 - 1/3) / 1 + (1/3 * 1 / 1) * P'(a), and the unigram continuation
  # counts N1+(. a) = N1+(. b) = 1 give D' = 1 and P'(a) = 1 * 2/2 * 1/2 = 1/2.
  model = ngram.KneserNey(np.array([0, 1, 0, 1]), vocab_size=2, max_order=2)
  probs = model.next_char_probs(np.array([1, 0, 1]))
  assert probs[1, 1] == pytest.approx(5 / 6)
  # After 'a' (seen twice, always before 'b'): (2 - 1/3) / 2 + (1/3 * 1 / 2) * 1/2.
  assert probs[1, 2] == pytest.approx(11 / 12)


def _reference_kn(train: str, vocab: str, order: int, history: str, w: str) -> float:
  """Interpolated Kneser-Ney from its definition, on strings (independent of the
  hashed tables): raw counts at the top order, continuation counts below."""
  def counts(k, continuation):
    c = collections.Counter()
    if continuation:
      seen = {train[p - k - 1:p + 1] for p in range(k + 1, len(train))}
      for g in seen:
        c[g[1:]] += 1
    else:
      for p in range(k, len(train)):
        c[train[p - k:p + 1]] += 1
    return c

  def prob(k, h, w, continuation):
    if k < 0:
      return 1 / len(vocab)
    c = counts(k, continuation)
    cc = list(c.values())
    n1, n2 = cc.count(1), cc.count(2)
    d = n1 / (n1 + 2 * n2) if n1 else 0.5
    ctx = h[len(h) - k:] if k else ''
    total = sum(v for g, v in c.items() if g[:-1] == ctx)
    types = sum(1 for g in c if g[:-1] == ctx)
    lower = prob(k - 1, h, w, True)
    if len(h) < k or total == 0:
      return lower
    return max(c[ctx + w] - d, 0) / total + d * types / total * lower

  return prob(order - 1, history, w, False)


def test_kneser_ney_matches_a_definition_on_strings():
  rng = np.random.default_rng(2)
  vocab = 'abcd'
  train = ''.join(rng.choice(list('aabbbcd'), 120))
  test = ''.join(rng.choice(list(vocab), 25))
  ids = lambda s: np.array([vocab.index(c) for c in s])
  model = ngram.KneserNey(ids(train), len(vocab), max_order=4)
  got = model.next_char_probs(ids(test))
  for order in (1, 2, 3, 4):
    for p in range(len(test)):
      want = _reference_kn(train, vocab, order, test[:p], test[p])
      assert got[order - 1, p] == pytest.approx(want, rel=1e-9), (order, p)


def test_kneser_ney_distributions_sum_to_one():
  rng = np.random.default_rng(3)
  train = rng.integers(0, 5, 400) * (rng.random(400) < 0.7)  # Skewed, 0 frequent.
  model = ngram.KneserNey(train, vocab_size=6, max_order=5)  # 5 never seen in training.
  for order in (1, 3, 5):
    for context in ([0, 0, 1, 2], [4, 4, 4, 4], [5, 5, 1, 0]):
      dist = model.distribution(np.array(context), order)
      assert dist.sum() == pytest.approx(1.0, abs=1e-12)
      assert dist.min() > 0
  losses = ngram.loss_table(model, {'test': rng.integers(0, 5, 300)})['test']
  assert losses.shape == (5,) and np.all(np.isfinite(losses))


# ----------------------------------------------------------------------------
# Activations: the same logits as the model's forward pass, state carried over windows.


@pytest.mark.parametrize('cell,embed', [('lstm', 0), ('gru', 6), ('rnn', 0), ('mingru', 0),
                                        ('minlstm', 6), ('lru', 0)])
def test_activations_equal_the_models_forward_pass(cell, embed):
  model = CharLM(11, cell=cell, hidden_size=16, num_layers=2, embed_dim=embed,
                 recurrence='reference', rngs=nnx.Rngs(1))
  tokens = np.random.default_rng(4).integers(0, 11, 53).astype(np.int32)
  acts = activations.run_over_text(model, tokens, window=20, top_k=3)  # 3 windows.
  logits, _ = model(jnp.asarray(tokens)[None], model.initial_carry(1))
  logp = np.asarray(jax.nn.log_softmax(logits[0], axis=-1), np.float64)
  np.testing.assert_allclose(np.log(acts.next_prob), logp[np.arange(52), tokens[1:]],
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(acts.top_ids[:, 0], logp.argmax(axis=-1))
  np.testing.assert_allclose(acts.top_probs[:, 0], np.exp(logp.max(axis=-1)), rtol=1e-4)
  # The last layer's h is what the head reads.
  h = np.asarray(acts.states[(1, 'h')], np.float32)
  head = h @ np.asarray(model.head.kernel[...]) + np.asarray(model.head.bias[...])
  np.testing.assert_allclose(head, np.asarray(logits[0]), atol=3e-3)  # float16 storage.
  names = {n for _, n in acts.states}
  want = {'lstm': {'i', 'f', 'g', 'o', 'h', 'c'}, 'gru': {'r', 'z', 'n', 'h'}, 'rnn': {'h'},
          'mingru': {'z', 'h~', 'h'}, 'minlstm': {'f', 'i', 'h~', 'h'},
          'lru': {'s_re', 's_im', 'h'}}
  assert names == want[cell]


def test_activations_to_memmap(tmp_path):
  model = CharLM(7, cell='lstm', hidden_size=16, num_layers=1, rngs=nnx.Rngs(0))
  tokens = np.arange(30) % 7
  mem = activations.run_over_text(model, tokens, window=8, memmap_dir=str(tmp_path))
  ram = activations.run_over_text(model, tokens, window=30)
  np.testing.assert_array_equal(mem.states[(0, 'c')], ram.states[(0, 'c')])
  assert (tmp_path / 'layer0_c.npy').exists()
  np.testing.assert_allclose(mem.next_prob, ram.next_prob, rtol=1e-5)


def test_inside_if_marks_the_keyword_and_its_condition_by_hand():
  from rnnlm.studies.inside import features
  text = 'x = 1; if (a && (b)) { f(); } /* if (c) */ s = "if (d)"; elif(e); #if (X)\nif(y)z'
  got = features.inside_if(text)
  marked = [text[i] for i in range(len(text)) if got[i]]
  # Only the two C ifs in code: `if (a && (b))` and `if(y)`.
  assert ''.join(marked) == 'if (a && (b))' + 'if(y)'
  assert features.KINDS['inside_if'] == 'binary'
  assert set(features.compute(text)) == set(features.KINDS)


# ----------------------------------------------------------------------------
# The 2015 paper's error oracles, on a hand-worked text.


def test_in_recent_word_by_hand():
  from rnnlm.studies.inside import errors
  text = 'Mary met Marie. Mary left.'
  #       0    5    10   15   20
  got = errors.in_recent_word(text, 100)
  assert list(np.flatnonzero(got)) == [17, 18, 19]  # 'ary' of the second Mary.
  assert not errors.in_recent_word(text, 10).any()  # Too far back: 'et Marie. '.
  # A substring counts: 'Mar' would be found inside 'Marie'.
  assert list(np.flatnonzero(errors.in_recent_word('Marie Mar', 100))) == [7, 8]


def test_oracle_breakdown_by_hand():
  from rnnlm.studies.inside import errors
  #       0123456789...
  text = 'xy Abc Abc, Zed\n7'
  prob = np.full(len(text), 0.9)
  prob[0] = np.nan  # No context: never counted.
  wrong = [1, 3, 8, 9, 10, 12, 13, 15, 16]
  prob[wrong] = 0.2
  ngram = np.zeros((12, len(text)))
  ngram[2, 1] = 0.9    # The 3-gram predicts the 'y': an n-gram error.
  ngram[9, 16] = 0.9   # Only the 10-gram predicts the '7': above the oracle's orders.
  counts = collections.Counter({'xy': 20, 'Abc': 20, 'Zed': 1})
  got = errors.oracle_breakdown(text, prob, ngram, counts, memory_window=1000,
                                rare_below=10)
  assert got['errors'] == 9 and got['characters'] == len(text) - 1
  assert got['error_rate'] == pytest.approx(9 / 16)
  by_name = {r['oracle']: r['errors'] for r in got['oracles']}
  # 'bc' of the second "Abc", seen before it (8, 9); "Zed" is rare (12, 13);
  # 'A' starts a word (3); then the newline (15), the comma (10) and the '7' (16).
  assert by_name == {'n-gram': 1, 'dynamic memory': 2, 'rare words': 2, 'word starts': 1,
                     'new line': 1, 'punctuation': 1, 'the rest': 1}
  assert [r['oracle'] for r in got['oracles']] == list(errors.ORACLES)
  assert sum(r['share'] for r in got['oracles']) == pytest.approx(1.0)


def test_error_figure_draws_models_side_by_side(tmp_path):
  from rnnlm.studies import plots
  from rnnlm.studies.inside import errors
  text = 'ab ab ab\n'
  prob = np.full(len(text), 0.1)
  b = errors.oracle_breakdown(text, prob, np.zeros((3, len(text))), collections.Counter())
  path = plots.error_figure({'small': b, 'large': b}, str(tmp_path / 'errors.png'))
  assert open(path, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
