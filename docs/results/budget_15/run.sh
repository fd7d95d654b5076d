#!/bin/bash
# The 15-minute recipe search (search/), then two rounds of single runs (round2/,
# avx2_kernels/, each with its own run.sh).
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/sweep.py --config=configs/sweeps/shakespeare_budget.py:15 --sweep_dir=runs/budget_15
# A second run of the shipped config of then (search/second_run/):
python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/shakespeare_15min_amd
