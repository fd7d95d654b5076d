"""Every shipped config trains on 8 devices (forced host devices, in a fresh process),
with its own batch sizes, cell, depth, dtype and recurrence setting (widths capped at
128), on the tiny corpus and 4-character windows."""

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (config module, presets); sweep configs train their `base`.
SHIPPED = [('configs.default', [None]), ('configs.shakespeare', [None]),
           ('configs.shakespeare_5min', [None]),
           ('configs.shakespeare_15min', [None]), ('configs.shakespeare_30min', [None]),
           ('configs.tiny', [None]), ('configs.emergence.linux', ['cpu', 'full']),
           ('configs.emergence.shakespeare', ['cpu', 'full']),
           ('configs.sweeps.shakespeare_hidden', ['cpu', 'full']),
           ('configs.sweeps.shakespeare_data', ['cpu', 'full']),
           ('configs.sweeps.paper_table', ['cpu', 'full', 'cpu_linux', 'full_linux']),
           ('configs.sweeps.shakespeare_joint', ['cpu', 'full']),
           ('configs.sweeps.shakespeare_budget', ['5', '15', '30']),
           ('configs.sweeps.architectures', ['cpu', 'full'])]

SCRIPT = r'''
import importlib, json, sys, tempfile
import jax
from rnnlm.training import train
assert len(jax.devices()) == 8, jax.devices()
out, seen = [], set()
for module, presets in json.loads(sys.argv[1]):
  for preset in presets:
    m = importlib.import_module(module)
    config = m.get_config() if preset is None else m.get_config(preset)
    config = config.base if 'base' in config else config
    with config.unlocked():
      config.data.name, config.data.path, config.data.max_chars = 'tiny', '', 0
      config.train.seq_length = 4
      config.train.num_steps, config.eval.eval_every = 2, 2
      config.eval.sample_length, config.eval.sample_prime = 8, '\n'
      config.train.time_budget_minutes = 0.0
      # Widths do not change how a batch splits; capped to keep the test short.
      config.model.hidden_size = min(config.model.hidden_size, 128)
    # Presets that train the same model with the same batches run once.
    key = json.dumps([config.model.to_dict(), config.train.batch_size, config.eval.batch_size])
    if key in seen:
      continue
    seen.add(key)
    r = train.train_and_evaluate(config, tempfile.mkdtemp())
    vocab = len(train.build_data(config).vocab)
    out.append([module, preset, config.train.batch_size, config.model.compute_dtype,
                r['final_step'], r['best_val_loss'], vocab])
print(json.dumps(out))
'''


@pytest.mark.slow
def test_every_shipped_config_trains_on_8_devices(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS='--xla_force_host_platform_device_count=8',
             RNNLM_DATA=str(tmp_path / 'data'))
  proc = subprocess.run([sys.executable, '-c', SCRIPT, json.dumps(SHIPPED)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-4000:]
  rows = json.loads(proc.stdout.strip().splitlines()[-1])
  for module, preset, batch, dtype, final_step, loss, vocab in rows:
    # Two steps from an initialization whose predictions are near uniform: the loss is
    # near log(vocab) (a broken step gives NaN, or a loss far from it).
    assert final_step == 2 and abs(loss - math.log(vocab)) < 0.5, (module, preset, loss)
  # char-rnn's batch of 50 (padded to 56) and the accelerator presets (bf16, 128) ran.
  assert ('configs.shakespeare', None, 50, 'float32') in [tuple(r[:4]) for r in rows]
  assert any(r[2] == 128 and r[3] == 'bfloat16' for r in rows)
