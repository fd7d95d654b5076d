#!/bin/bash
# The sweep; its report, rows and figures were copied here from architectures.
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/sweep.py --config=configs/sweeps/architectures.py:cpu --sweep_dir=runs/architectures
