"""Test setup: 4 virtual CPU devices (for the sharding tests) and a private data cache."""

import os

# Must happen before JAX initializes its backends.
os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=4').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
if os.environ['JAX_PLATFORMS'] != 'cpu':
  # The float32 tests compare with float64 references at CPU tolerances; a GPU's
  # default matmul precision may round inputs to TF32.
  os.environ.setdefault('JAX_DEFAULT_MATMUL_PRECISION', 'highest')

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_data_cache(tmp_path_factory, monkeypatch):
  cache = tmp_path_factory.getbasetemp() / 'rnnlm_data'
  monkeypatch.setenv('RNNLM_DATA', str(cache))
