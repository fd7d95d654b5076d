#!/bin/bash
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/emergence.py --config=configs/emergence/shakespeare.py:cpu --workdir=runs/emergence_shakespeare
