#!/bin/bash
# Made by docs/results/paper_2015/table.sh: Table 1 of the 2015 paper to convergence
# (configs/sweeps/paper_table.py:linux_paper), sync step. Resumable; see table.sh.
#   bash docs/results/paper_linux/sync.sh [SWEEP_DIR] [FLAGS...]
exec bash "$(dirname "$0")/../paper_2015/table.sh" sync linux_paper paper_linux "${1:-runs/paper_linux}" "${@:2}"
