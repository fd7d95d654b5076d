#!/bin/bash
# The transformer attention before (commit 17493fe) and after, in one process.
cd "$(dirname "$0")/../../.."  # The repository root.
python docs/results/transformer_attention/before_after.py 17493fe > docs/results/transformer_attention/before_after.txt
