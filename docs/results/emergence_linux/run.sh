#!/bin/bash
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/emergence.py --config=configs/emergence/linux.py:cpu --workdir=runs/emergence_linux
