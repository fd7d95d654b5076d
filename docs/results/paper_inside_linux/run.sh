#!/bin/bash
# Made by docs/results/paper_2015/inside.sh (this folder: paper_inside_linux).
cd "$(dirname "$0")/../../.."
bash docs/results/paper_2015/inside.sh linux "${1:-runs}"
