#!/bin/bash
# Made by docs/results/paper_2015/table.sh: Table 1 of the 2015 paper to convergence
# (configs/sweeps/paper_table.py:warpeace), sync step. Resumable; see table.sh.
#   bash docs/results/paper_warpeace/sync.sh [SWEEP_DIR] [FLAGS...]
exec bash "$(dirname "$0")/../paper_2015/table.sh" sync warpeace paper_warpeace "${1:-runs/paper_warpeace}" "${@:2}"
