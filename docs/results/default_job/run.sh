#!/bin/bash
# The default job: configs/shakespeare.py (metrics.jsonl is its metrics; curve.png its plot).
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/train.py --workdir=runs/shakespeare
python experiments/sample.py --workdir=runs/shakespeare --temperature=0.8 --length=700 --seed=1
