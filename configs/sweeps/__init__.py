"""Sweep configs: `--config=configs/sweeps/<file>.py:cpu` or `:full`."""
