#!/bin/bash
# Looking inside the Linux emergence run's model (../emergence_linux/run.sh first).
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/look_inside.py --workdir=runs/emergence_linux --out_dir=runs/emergence_linux/inside
