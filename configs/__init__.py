"""ml_collections configs for rnnlm; `default.py` documents every field."""
