#!/bin/bash
# Made by docs/results/paper_2015/inside.sh (this folder: paper_inside_warpeace).
cd "$(dirname "$0")/../../.."
bash docs/results/paper_2015/inside.sh warpeace "${1:-runs}"
