#!/bin/bash
# Made by docs/results/paper_2015/inside.sh (this folder: paper_inside_warpeace_small).
cd "$(dirname "$0")/../../.."
bash docs/results/paper_2015/inside.sh warpeace "${1:-runs}"
