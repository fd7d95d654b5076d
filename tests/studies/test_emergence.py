import math

import pytest

from rnnlm.studies import emergence as em
from rnnlm.studies import emergence_runs

PLAY = """Kent.
I thought the King had more affected the Duke of Albany than
Cornwall.

Glou.
It did always seem so to us.

[Exit.]

[Sennet. Enter AGAMEMNON, NESTOR,
ULYSSES, and others.]

First Lord.
Good night.

the words ran on with no speaker
and more of them

Edm"""


def test_words_and_validity_by_hand():
  known = em.word_set('The king hath a crown. Thou art a KING!')
  assert known == {'the', 'king', 'hath', 'a', 'crown', 'thou', 'art'}
  # 'Thou', 'hath', 'crown' known; 'xqz' not; the cut-off 'ki' is left out.
  assert em.word_validity('Thou hath xqz crown ki', known) == pytest.approx(3 / 4)
  assert em.word_validity("Thou hath xqz crown.", known) == pytest.approx(3 / 4)
  assert math.isnan(em.word_validity('123 ,.', known))
  assert em.words("o'er the king's men") == ["o'er", 'the', "king's", 'men']


def test_mean_word_length_by_hand():
  assert em.mean_word_length('a bb ccc, dddd!') == pytest.approx(2.5)


def test_play_layout_by_hand():
  # Blocks: Kent, Glou, [Exit.], the two-line [Sennet ...], First Lord (ok), no-speaker
  # (bad); the cut-off last block 'Edm' is left out.
  assert em.play_layout_share(PLAY) == pytest.approx(5 / 6)
  assert math.isnan(em.play_layout_share('just one unfinished block'))


def test_bracket_balance_by_hand():
  assert em.bracket_balance('f(a[1]) { g(); }') == 1.0
  # '(' '[' ')' : ')' does not match '[' -> unmatched, then '(' '[' left open: 3 of 3 bad.
  assert em.bracket_balance('([)') == 0.0
  # 6 brackets, the stray '}' and the unclosed '(' are unmatched: 4/6.
  assert em.bracket_balance('{ f(x) } } (') == pytest.approx(4 / 6)
  # Brackets in strings, chars and comments are ignored.
  assert em.bracket_balance('printf("(("); c = \'{\'; /* ) */ x[0];') == 1.0
  assert math.isnan(em.bracket_balance('no brackets'))


def test_quote_balance_by_hand():
  text = 'a = "x";\nb = "unterminated;\nc = \'"\';\nd = "esc \\" q";\nno quotes'
  # Lines with quotes: a (ok), b (bad), d (ok); the char literal line has none left.
  assert em.quote_balance(text) == pytest.approx(2 / 3)


C_CODE = """static int add(int a, int b)
{
\treturn a + b;
}

int broken(int x)
{
\tif (x > 0 {
\t\treturn x;
}

void *alloc_thing(struct foo *f,
\t\t  size_t n)
{
\treturn kmalloc(n, GFP_KERNEL);
}
"""


def test_function_chunks_and_parse_rate():
  chunks = em.function_chunks(C_CODE)
  assert [c.split('(')[0].split()[-1].lstrip('*') for c in chunks] == ['add', 'broken', 'alloc_thing']
  pytest.importorskip('tree_sitter_c')
  rate, n = em.c_function_parse_rate(C_CODE)
  assert n == 3 and rate == pytest.approx(2 / 3)


def test_ngram_probabilities_by_hand():
  model = em.CharNGram('abab', order=2)
  # Order 0: counts a=2, b=2, alphabet 2 (+1 unseen) -> P(a) = 3/7.
  assert model.prob('', 'a') == pytest.approx(3 / 7)
  # After 'a': C(ab)=2, C(a.)=2, T(a)=1 -> P(b|a) = (2 + 1 * 3/7) / 3.
  assert model.prob('a', 'b') == pytest.approx((2 + 3 / 7) / 3)
  assert model.prob('a', 'a') == pytest.approx((0 + 3 / 7) / 3)
  # Probabilities over the alphabet plus the one slot for unseen chars sum to one.
  unseen = model.prob('a', 'z')
  assert model.prob('a', 'a') + model.prob('a', 'b') + unseen == pytest.approx(1.0, abs=1e-12)


def test_ngram_prefers_corpus_like_text():
  corpus = 'the king and the queen and the fool. ' * 50
  model = em.CharNGram(corpus, order=4)
  assert model.bits_per_char('the queen and the king.') < model.bits_per_char('qxz kkq eeh tfn')


def test_emergence_run_on_tiny(tmp_path):
  from configs.emergence import shakespeare
  config = shakespeare.get_config('cpu')
  config.data.name = 'tiny'
  config.model.hidden_size = 16
  config.train.batch_size = 4
  config.train.seq_length = 16
  config.train.num_steps = 6
  config.eval.eval_every = 100
  config.eval.batch_size = 4
  config.eval.sample_length = 0
  config.emergence.steps = (2, 6)
  config.emergence.prime = 'KING.'
  config.emergence.sample_length = 200
  config.emergence.reference_chars = 5000
  report = emergence_runs.run_emergence(config, str(tmp_path))
  text = open(report).read()
  assert '### step 2' in text and '### step 6' in text and 'corpus (val text)' in text
  records = emergence_runs._read_records(str(tmp_path / 'emergence.jsonl'))
  assert [r['step'] for r in records] == [2, 6]
  assert 0.0 <= records[-1]['word_validity'] <= 1.0
  assert (tmp_path / 'emergence.png').exists()


@pytest.mark.slow
def test_measure_sweep_on_tiny(tmp_path):
  from configs import tiny
  from configs.emergence import shakespeare
  from rnnlm.studies import sweep
  base = tiny.get_config()
  base.train.num_steps = 4
  base.eval.eval_every = 2
  base.eval.sample_length = 0
  d = str(tmp_path / 'sweep')
  sweep.run_sweep(base, [{'model.hidden_size': 8}, {'model.hidden_size': 16}], d)
  e = shakespeare.get_config('cpu').emergence
  e.prime, e.sample_length, e.reference_chars = 'KING.', 150, 5000
  report = emergence_runs.measure_sweep(d, e, base.data)
  text = open(report).read()
  assert 'hidden_size-8' in text and 'hidden_size-16' in text and 'corpus (val text)' in text
  assert (tmp_path / 'sweep' / 'emergence_by_size.png').exists()


def test_measure_sweep_without_a_sweep(tmp_path):
  from configs import tiny
  from configs.emergence import shakespeare
  from rnnlm.errors import UserError
  with pytest.raises(UserError, match='no sweep'):
    emergence_runs.measure_sweep(str(tmp_path), shakespeare.get_config('cpu').emergence, tiny.get_config().data)
