#!/bin/bash
# Table 1 of Karpathy, Johnson and Fei-Fei (2015) on War and Peace, to convergence, at
# the paper's two smallest budgets (configs/sweeps/paper_table.py:warpeace).
#
#   bash docs/results/paper_warpeace/run.sh SWEEP_DIR [FLAGS...]
#
# FLAGS go to experiments/sweep.py (e.g. --config.sweep.budget_lstm_cells='(64,)' runs
# one budget with its extra rates and seeds first; the full command resumes from it).
# Resumable: trials finished before (results.json) are skipped. On a new machine the
# trials committed here are copied into SWEEP_DIR first, so that only the rest run.
# After each finished trial, `sync.sh SWEEP_DIR` copies the small files back here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
sweep_dir="${1:-runs/paper_warpeace}"
shift || true
mkdir -p "$sweep_dir/trials"
for t in "$here"/trials/*/; do
  [ -d "$t" ] || continue
  name="$(basename "$t")"
  [ -e "$sweep_dir/trials/$name/results.json" ] || { mkdir -p "$sweep_dir/trials/$name"; cp "$t"* "$sweep_dir/trials/$name/"; }
done
cd "$here/../../.."
python experiments/sweep.py --config=configs/sweeps/paper_table.py:warpeace --sweep_dir="$sweep_dir" "$@"
