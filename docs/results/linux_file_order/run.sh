#!/bin/bash
# The Linux cut's file order: the first 6 epochs of configs/paper_inside.py:linux (a
# 2 x 256 LSTM, the paper's training) on 6.2M characters of the kernel's files taken in
# sorted path order, split 80/10/10 (path_order/), against the same model on the files
# shuffled before the cut, split 90/5/5 (the preset as it stands; its full run is
# docs/results/paper_inside_linux). report.md compares the train and validation losses.
set -euo pipefail
runs="${1:-runs}"
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/train.py --config=configs/paper_inside.py:linux --workdir="$runs/linux_path_order" \
  --config.data.file_order=path --config.data.split='(0.8,0.1,0.1)' \
  --config.eval.eval_every=496 --config.train.num_steps=2976
mkdir -p docs/results/linux_file_order/path_order
cp "$runs/linux_path_order"/{config.json,metrics.jsonl} docs/results/linux_file_order/path_order/
