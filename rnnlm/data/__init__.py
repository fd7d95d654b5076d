"""The data layer: characters to batches (named corpora, vocabulary, prepared token
files, splits, batch streams). It imports nothing of the model, training or studies.

The data path (docs/design.md has the whole of it):

  text files (`corpora`: named corpora with provenance, or local files)
    -> `prepare()` (two streaming passes: vocabulary, then tokens)
    -> `<cache>/vocab.json`, `<cache>/tokens.bin` (uint8 or uint16), `<cache>/meta.json`
  -> `load_prepared()` -> `Vocab` + a read-only numpy memmap of token ids
  -> `split()` -> contiguous train / val / test views (no copy)
  -> `BatchStream`: `batch_size` parallel contiguous streams read in windows of
     `seq_length`, the char-rnn way (truncated BPTT, state carried between windows).

Nothing here holds a whole corpus in memory as a Python string, so corpora larger
than RAM work.
"""

from rnnlm.data.batches import Batch, BatchStream, split
from rnnlm.data.prepared import Corpus, DamagedCache, is_prepared, load_prepared, prepare
from rnnlm.data.text import Vocab, atomic_write, file_sha256, iter_text_chunks

__all__ = ['Batch', 'BatchStream', 'Corpus', 'DamagedCache', 'Vocab', 'atomic_write', 'file_sha256',
           'is_prepared', 'iter_text_chunks', 'load_prepared', 'prepare', 'split']
