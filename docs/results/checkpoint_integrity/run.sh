#!/bin/bash
# The cost of checkpoint manifests at the default size (2 x 256 LSTM) and a large one
# (2 x 1024), median of 5; run on an idle machine.
cd "$(dirname "$0")/../../.."
python docs/results/checkpoint_integrity/measure.py > docs/results/checkpoint_integrity/results.json
