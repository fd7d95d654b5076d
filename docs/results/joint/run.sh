#!/bin/bash
# The sweep; its report, rows and figures were copied here from joint.
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/sweep.py --config=configs/sweeps/shakespeare_joint.py:cpu --sweep_dir=runs/joint
