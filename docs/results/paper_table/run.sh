#!/bin/bash
# The sweep; its report, rows and figures were copied here from paper_table.
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/sweep.py --config=configs/sweeps/paper_table.py:cpu --sweep_dir=runs/paper_table
