#!/bin/bash
# Every run behind "The 2015 paper, side by side" (docs/results.md), in order, then this
# folder's report.md. Each step resumes a run that stopped part-way and skips what has
# finished; each copies its small files into docs/results/ as it ends (commit them).
# Checkpoints stay in RUNS_DIR.
#
#   bash docs/results/paper_2015/run.sh [RUNS_DIR]
set -euo pipefail
runs="${1:-runs}"
cd "$(dirname "$0")/../../.."  # The repository root.
table() {  # table FOLDER [FLAGS...]: a Table 1 sweep, then its small files.
  local folder="$1"
  shift
  bash "docs/results/$folder/run.sh" "$runs/$folder" "$@"
  bash "docs/results/$folder/sync.sh" "$runs/$folder"
}
# 1. Table 1 on War and Peace at the 64-cell budget, with its extra rates and seeds.
table paper_warpeace --config.sweep.budget_lstm_cells='(64,)'
# 2. The 2 x 256 LSTMs to convergence, and what is inside them.
bash docs/results/paper_2015/inside.sh linux "$runs"
bash docs/results/paper_2015/inside.sh warpeace "$runs"
# 3. Table 1 on War and Peace at both budgets.
table paper_warpeace
python experiments/paper_2015.py --results_dir=docs/results --out_dir=docs/results/paper_2015
