"""Where the Linux cut's validation and test losses come from, file by file.

  python docs/results/linux_file_order/per_file.py --deb=linux-source-6.1_6.1.192-3_all.deb \
      --workdir=RUN [--workdir=RUN ...] > docs/results/linux_file_order/per_file.md

(docs/results/linux_file_order/per_file.sh picks the runs from the Linux Table 1 sweep.)

Reads the names of the cut's files (in order) from the corpus's provenance, takes each
file's text from the Debian package the cut was made from (checking that their
concatenation is the corpus), runs each model over the validation and test splits and
over the last 300,000 characters of the training split (from a zero state, one
character at a time), and writes a Markdown report of the loss per file and of each
model's difference from the first, with its spread over the part's files.
"""

import collections
import os
import sys

from absl import app
from absl import flags
import numpy as np

from rnnlm import config as config_lib
from rnnlm.data import corpora
from rnnlm.model import activations
from rnnlm.training import checkpoint

_DEB = flags.DEFINE_string('deb', None, 'the linux-source-6.1 .deb the cut was made from')
_WORKDIR = flags.DEFINE_multi_string('workdir', [], 'training runs on the cut to score')
_TRAIN_CHARS = flags.DEFINE_integer('train_chars', 300_000, 'training characters scored')
_TOP = flags.DEFINE_integer('top', 8, 'files listed per split')


def file_texts(deb: str, names: list[str]) -> list[str]:
  want, got = set(names), {}
  with corpora._kernel_tree_tar(deb) as tar:  # pylint: disable=protected-access
    for m in tar:
      rel = os.path.normpath(m.name).lstrip('./')
      if m.isfile() and rel in want:
        got[rel] = tar.extractfile(m).read().decode('utf-8')
  missing = want - set(got)
  if missing:
    sys.exit(f'per_file.py: {len(missing)} files of the cut are not in {deb}, e.g.'
             f' {sorted(missing)[0]}; give the package the cut was made from')
  return [got[n] for n in names]


def main(argv):
  del argv
  if not _DEB.value or not _WORKDIR.value:
    sys.exit('per_file.py: give --deb and at least one --workdir')
  config = config_lib.load(_WORKDIR.value[0])
  corpus = corpora.get_corpus(config.data)
  names = corpus.meta['files']  # The cut's files, in order (its provenance).
  texts = file_texts(_DEB.value, names)
  if ''.join(texts) != corpus.vocab.decode(np.asarray(corpus.tokens)):
    sys.exit('per_file.py: the files do not concatenate to the corpus; wrong package?')
  owner = np.repeat(np.arange(len(texts)), [len(t) for t in texts])  # File of each char.
  train, val, test = corpora.splits(corpus, config.data)
  starts = {'train (last %d chars)' % _TRAIN_CHARS.value: len(train) - _TRAIN_CHARS.value,
            'val': len(train), 'test': len(train) + len(val)}
  ends = {k: s + n for (k, s), n in zip(starts.items(), (_TRAIN_CHARS.value, len(val), len(test)))}
  short = [n.replace('linux-source-6.1/', '') for n in names]
  print(__doc__.split('\n\n')[0] + '\n')
  print('Made by `bash docs/results/linux_file_order/per_file.sh RUNS_DIR` (after'
        ' docs/results/paper_linux/run.sh RUNS_DIR), which runs:\n\n```bash\n'
        'python docs/results/linux_file_order/per_file.py'
        f' --deb={os.path.basename(_DEB.value)} \\\n    '
        + ' '.join(f'--workdir={w}' for w in _WORKDIR.value) + '\n```\n')
  print(f'The cut: {len(names)} files, {len(owner):,} characters; train {len(train):,},'
        f' val {len(val):,}, test {len(test):,}. Loss in nats per character, from a zero'
        ' state at the start of each part.\n')
  losses = {}
  for w in _WORKDIR.value:
    model, _, step = checkpoint.load_model(w, 'best')
    for part, s in starts.items():
      toks = np.asarray(corpus.tokens[s:ends[part]])
      losses[(w, part)] = activations.run_over_text(model, toks, keep_states=False).loss_nats
  labels = {}
  for w in _WORKDIR.value:
    c = config_lib.load(w)
    m = c.model
    labels[w] = (f'{m.cell.upper()} {m.num_layers}x{m.hidden_size} at'
                 f' {c.train.learning_rate:g}, seed {c.seed}')
  print('| part | files | ' + ' | '.join(labels.values()) + ' |')
  print('|---|---|' + '---|' * len(labels))
  for part, s in starts.items():
    n_files = len(set(owner[s:ends[part]]))
    print(f'| {part} | {n_files} | ' + ' | '.join(
        f'{losses[(w, part)].mean():.3f}' for w in _WORKDIR.value) + ' |')
  first = _WORKDIR.value[0]
  for part, s in starts.items():
    who = owner[s + 1:ends[part]]  # The file of each predicted character.
    per = collections.defaultdict(lambda: collections.defaultdict(float))
    for w in _WORKDIR.value:
      sums = np.bincount(who, weights=losses[(w, part)], minlength=len(names))
      for f in np.unique(who):
        per[f][w] = sums[f]
    counts = np.bincount(who, minlength=len(names))
    total = {w: losses[(w, part)].sum() for w in _WORKDIR.value}
    order = sorted(per, key=lambda f: -per[f][first])
    print(f'\n**{part}**: the files with the largest share of {labels[first]}\'s loss'
          f' (of {len(order)}).\n')
    print('| file | chars | ' + ' | '.join(f'{labels[w]}: loss' for w in _WORKDIR.value)
          + f' | share of {labels[first]}\'s loss |')
    print('|---|---|' + '---|' * (len(labels) + 1))
    for f in order[:_TOP.value]:
      print(f'| {short[f]} | {counts[f]:,} | ' + ' | '.join(
          f'{per[f][w] / counts[f]:.3f}' for w in _WORKDIR.value)
          + f' | {per[f][first] / total[first]:.1%} |')
    w0 = first
    for w1 in _WORKDIR.value[1:]:
      diff = {f: per[f][w1] - per[f][w0] for f in per}  # Summed nats.
      net = sum(diff.values())
      top = sorted(diff, key=lambda f: -abs(diff[f]))[:3]
      # The spread of that difference over the part's files: files drawn with
      # replacement (2,000 draws), the difference per character of each draw.
      files = np.array(sorted(per))
      d, c = np.array([diff[f] for f in files]), counts[files]
      draws = np.random.default_rng(0).integers(0, len(files), (2000, len(files)))
      lo, hi = np.percentile(d[draws].sum(1) / c[draws].sum(1), [5, 95])
      print(f'\n{labels[w1]} minus {labels[w0]}: {net / counts.sum():+.4f} nats per'
            f' character (5-95% over files drawn with replacement: {lo:+.4f} to {hi:+.4f});'
            ' the three files that move it most: ' + '; '.join(
                f'{short[f]} ({diff[f] / counts.sum():+.4f})' for f in top) + '.')


if __name__ == '__main__':
  app.run(main)
