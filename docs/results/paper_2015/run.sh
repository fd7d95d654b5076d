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
table() {  # table PRESET FOLDER [FLAGS...]: a Table 1 sweep, then its small files.
  local preset="$1" folder="$2"
  shift 2
  bash docs/results/paper_2015/table.sh run "$preset" "$folder" "$runs/$folder" "$@"
  bash docs/results/paper_2015/table.sh sync "$preset" "$folder" "$runs/$folder"
}
one_budget=--config.sweep.budget_lstm_cells='(64,)'
# 1. The 2 x 256 LSTM on the Linux kernel to convergence, and what is inside it.
bash docs/results/paper_2015/inside.sh linux "$runs"
# 2. Table 1 on War and Peace at the 64-cell budget, with its extra rates and seeds.
table warpeace paper_warpeace "$one_budget"
# 3. The 2 x 256 LSTM on War and Peace, and its error analysis beside the table's
#    1-layer LSTM.
bash docs/results/paper_2015/inside.sh warpeace "$runs"
# 4. Table 1 on the Linux kernel at the 64-cell budget.
table linux_paper paper_linux "$one_budget"
# 5. The Linux table's chosen 1- and 2-layer LSTMs (and a second seed) file by file.
bash docs/results/linux_file_order/per_file.sh "$runs"
# 6. Both tables at both budgets (each resumes from its 64-cell trials).
table warpeace paper_warpeace
table linux_paper paper_linux
python experiments/paper_2015.py --results_dir=docs/results --out_dir=docs/results/paper_2015
