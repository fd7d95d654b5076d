"""rnnlm: character-level recurrent language models in JAX/Flax.

The library is four layers, each a package that imports only those before it:

  data/      named corpora, vocabulary, prepared token files, splits, batch streams
  model/     cells, the recurrence dispatch, CPU kernels, CharLM, the transformer
  training/  the train loop and its units, checkpoints, devices and hosts, sampling
  studies/   sweeps, scaling fits, the paper's table, emergence, looking inside

(`bench/`, speed against peers, sits on top; `config` and `errors` are shared.)

The names below are what a user of the library calls; they are imported on first
use, so `import rnnlm` is light:

  corpus = rnnlm.get_corpus(config.data)
  results = rnnlm.train_and_evaluate(config, workdir)
  model, vocab, step = rnnlm.load_model(workdir)
  print(rnnlm.generate_text(model, vocab, 'ROMEO:', length=200)[0])
"""

import importlib

__version__ = '0.3.0'

# Public name -> the module that defines it.
_PUBLIC = {
    'CharLM': 'rnnlm.model.charlm',
    'CharTransformer': 'rnnlm.model.transformer',
    'get_corpus': 'rnnlm.data.corpora',
    'train_and_evaluate': 'rnnlm.training.train',
    'load_model': 'rnnlm.training.checkpoint',
    'generate_text': 'rnnlm.training.sample',
    'evaluate': 'rnnlm.training.evaluation',
    'run_sweep': 'rnnlm.studies.sweep',
    'UserError': 'rnnlm.errors',
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
  if name in _PUBLIC:
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
  return sorted(list(globals()) + __all__)
