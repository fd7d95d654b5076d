#!/bin/bash
# The Linux Table 1's losses file by file (per_file.md): the chosen 1- and 2-layer LSTMs
# of the 64-cell budget (RUNS/paper_linux, configs/sweeps/paper_table.py:linux_paper) and
# the 1-layer LSTM's second seed at its rate, scored by per_file.py. A trial whose
# checkpoints are not in RUNS (its small files came from docs/results/paper_linux on a
# new machine) is trained again from its own config.json, under the stopping rules the
# sweep applies now (a config.json may predate them), in RUNS/per_file/NAME. Where
# per_file.md is committed and those checkpoints are gone, it is skipped.
#
#   bash docs/results/linux_file_order/per_file.sh [RUNS_DIR] [DEB]
#
# DEB: the linux-source-6.1 .deb the cut was made from (default: apt-get download of
# version 6.1.192-3, the one in the corpus's provenance).
set -euo pipefail
runs="${1:-runs}"
deb="${2:-}"
cd "$(dirname "$0")/../../.."  # The repository root.
mapfile -t trials < <(python - "$runs/paper_linux" <<'PY'
import json, os, sys
from rnnlm.studies import paper_table, sweep
d = sys.argv[1]
with open(os.path.join(d, 'budgets.json')) as f:
  budgets = json.load(f)
best = paper_table.chosen(paper_table.with_budgets(
    sweep.read_csv(os.path.join(d, 'results.csv')), budgets))
small = min(budgets.values())
one, two = best[('lstm', 1, small)]['name'], best[('lstm', 2, small)]['name']
seed = one + '_seed-1'
if not os.path.isdir(os.path.join(d, 'trials', seed)):
  sys.exit(f'per_file.sh: {seed} is not in {d}; finish the sweep first')
for name in (one, seed, two):
  print(os.path.join(d, 'trials', name))
PY
)
[ "${#trials[@]}" -eq 3 ] || exit 1
train_again() {  # train_again CONFIG_JSON WORKDIR CORE: one core, as the sweep ran it.
  RNNLM_KERNEL_THREADS=1 taskset -c "$3" python - "$1" "$2" <<'PY'
import json, sys
import ml_collections
from configs.sweeps import paper_table
from rnnlm.training import train
with open(sys.argv[1]) as f:
  config = ml_collections.ConfigDict(json.load(f))
now = paper_table.get_config('linux_paper').base.train
for field in ('early_stopping_start_epoch', 'stop_on_divergence'):
  config.train[field] = now[field]
train.train_and_evaluate(config, sys.argv[2])
PY
}
workdirs=()
again=()  # "CONFIG_JSON WORKDIR" of the trials to train again (resumable).
for t in "${trials[@]}"; do
  w="$t"
  if [ ! -d "$t/checkpoints" ]; then
    w="$runs/per_file/$(basename "$t")"
    [ -e "$w/results.json" ] || again+=("$t/config.json $w")
  fi
  workdirs+=("--workdir=$w")
done
out=docs/results/linux_file_order/per_file.md
if [ "${#again[@]}" -gt 0 ] && [ -s "$out" ]; then
  # Finished and committed, its checkpoints not here (a new machine): nothing to redo.
  echo "per_file.sh: $out is finished; delete it to train and score again"
  exit 0
fi
if [ -z "$deb" ]; then
  mkdir -p "$runs/per_file"
  deb="$runs/per_file/linux-source-6.1_6.1.192-3_all.deb"
  [ -e "$deb" ] || (cd "$runs/per_file" && apt-get download linux-source-6.1=6.1.192-3)
fi
cores="$(nproc)"
pids=()
for ((core = 0; core < cores && core < ${#again[@]}; core++)); do
  (for ((i = core; i < ${#again[@]}; i += cores)); do
     train_again ${again[$i]} "$core"
   done) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done  # set -e: a failed run stops here.
python docs/results/linux_file_order/per_file.py --deb="$deb" "${workdirs[@]}" > "$out"
