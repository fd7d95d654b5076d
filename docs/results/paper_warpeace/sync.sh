#!/bin/bash
# Copies the small files of every finished trial of SWEEP_DIR (config, vocabulary,
# metrics, results, last sample) and the sweep's table here; checkpoints stay behind.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
sweep_dir="$1"
for t in "$sweep_dir"/trials/*/; do
  name="$(basename "$t")"
  [ -e "$t/results.json" ] || continue
  mkdir -p "$here/trials/$name"
  cp "$t"/{config.json,vocab.json,metrics.jsonl,results.json} "$here/trials/$name/"
done
for f in results.csv budgets.json report.md; do
  [ -e "$sweep_dir/$f" ] && cp "$sweep_dir/$f" "$here/"
done
# The report from the trials finished so far (the sweep writes it again when it ends).
cd "$here/../../.."
python experiments/sweep.py --config=configs/sweeps/paper_table.py:warpeace --sweep_dir=docs/results/paper_warpeace \
  --report_only > /dev/null
exit 0
