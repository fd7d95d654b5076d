#!/bin/bash
# Trains configs/paper_inside.py:PRESET (a 2 x 256 LSTM, the paper's training) in
# RUNS/paper_inside_PRESET until its validation loss stops improving (resuming a run
# that stopped part-way), looks inside it on its test split, and copies the small files
# (config, metrics, results, the look_inside report and figures) to
# docs/results/paper_inside_PRESET/. On War and Peace it first looks inside the small
# model of the error analysis: the 1-layer LSTM of the 64-cell Table 1 budget at its
# chosen rate (RUNS/paper_warpeace must hold that sweep; a trial without checkpoints is
# trained again from its config). A run whose small files are
# already in docs/results/ (and whose RUNS folder is gone) is skipped.
#
#   bash docs/results/paper_2015/inside.sh linux|warpeace [RUNS_DIR]
set -euo pipefail
preset="$1"
runs="${2:-runs}"
cd "$(dirname "$0")/../../.."  # The repository root.
copy_out() {  # copy_out WORKDIR INSIDE_DIR NAME
  local out="docs/results/$3"
  mkdir -p "$out"
  cp "$1"/config.json "$1"/metrics.jsonl "$1"/results.json "$out/"
  cp "$2"/inside.md "$2"/inside.json "$2"/inside.html "$2"/*.png "$out/"
  printf '#!/bin/bash\n# Made by docs/results/paper_2015/inside.sh (this folder: %s).\ncd "$(dirname "$0")/../../.."\nbash docs/results/paper_2015/inside.sh %s "${1:-runs}"\n' \
    "$3" "$preset" > "$out/run.sh"
}
w="$runs/paper_inside_$preset"
done_dir="docs/results/paper_inside_$preset"
if [ ! -e "$w/results.json" ] && [ -e "$done_dir/results.json" ] && [ -e "$done_dir/inside.json" ]; then
  # Finished and committed (checkpoints are not): nothing to redo on a new machine.
  echo "inside.sh: $done_dir is finished; delete it to train and look inside again"
  exit 0
fi
[ -e "$w/results.json" ] || python experiments/train.py --config="configs/paper_inside.py:$preset" --workdir="$w"
compare=()
if [ "$preset" = warpeace ]; then
  small="$(python - "$runs/paper_warpeace" <<'PY'
import json, os, sys
from rnnlm.studies import paper_table, sweep
d = sys.argv[1]
with open(os.path.join(d, 'budgets.json')) as f:
  budgets = json.load(f)
best = paper_table.chosen(paper_table.with_budgets(
    sweep.read_csv(os.path.join(d, 'results.csv')), budgets))
print(os.path.join(d, 'trials', best[('lstm', 1, min(budgets.values()))]['name']))
PY
)"
  if [ ! -d "$small/checkpoints" ]; then
    # Its small files came from docs/results (a new machine): train it again from its
    # own config (same seed) in a folder of its own, then look inside that one.
    again="$runs/paper_inside_warpeace_small_run"
    [ -e "$again/results.json" ] || python - "$small/config.json" "$again" <<'PY'
import json, sys
import ml_collections
from rnnlm.training import train
with open(sys.argv[1]) as f:
  train.train_and_evaluate(ml_collections.ConfigDict(json.load(f)), sys.argv[2])
PY
    small="$again"
  fi
  python experiments/look_inside.py --workdir="$small" --out_dir="$runs/paper_inside_warpeace_small"
  copy_out "$small" "$runs/paper_inside_warpeace_small" paper_inside_warpeace_small
  compare=(--compare_with="$runs/paper_inside_warpeace_small/inside.json")
fi
python experiments/look_inside.py --workdir="$w" --out_dir="$w/inside" "${compare[@]}"
copy_out "$w" "$w/inside" "paper_inside_$preset"
