"""Emergence configs: `--config=configs/emergence/<file>.py:cpu` or `:full`."""
