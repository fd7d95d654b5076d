#!/bin/bash
# The sweep; its report, rows and figures were copied here from sweep_data.
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/sweep.py --config=configs/sweeps/shakespeare_data.py:cpu --sweep_dir=runs/sweep_data
