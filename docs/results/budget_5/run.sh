#!/bin/bash
# The sweep; its report, rows and figures were copied here from budget_5.
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/sweep.py --config=configs/sweeps/shakespeare_budget.py:5 --sweep_dir=runs/budget_5
