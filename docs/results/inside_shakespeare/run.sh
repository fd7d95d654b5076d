#!/bin/bash
# Looking inside the default job's model (../default_job/run.sh first).
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/look_inside.py --workdir=runs/shakespeare --out_dir=runs/shakespeare/inside
