#!/bin/bash
# The sweep; its report, rows and figures were copied here from sweep_hidden.
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/sweep.py --config=configs/sweeps/shakespeare_hidden.py:cpu --sweep_dir=runs/sweep_hidden
# The emergence measures over its trials (emergence_by_size.*):
python experiments/emergence.py --config=configs/emergence/shakespeare.py:cpu --sweep_dir=runs/sweep_hidden
