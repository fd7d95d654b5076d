#!/bin/bash
# Table 1 of Karpathy, Johnson and Fei-Fei (2015) to convergence on one corpus
# (configs/sweeps/paper_table.py:PRESET), kept in docs/results/FOLDER/.
#
#   bash docs/results/paper_2015/table.sh run PRESET FOLDER SWEEP_DIR [FLAGS...]
#   bash docs/results/paper_2015/table.sh sync PRESET FOLDER SWEEP_DIR
#
# run: copies the trials committed in FOLDER/trials into SWEEP_DIR (so that on a new
# machine only the rest run), then runs the sweep; trials finished before
# (results.json) are skipped and one stopped part-way resumes from its checkpoint.
# FLAGS go to experiments/sweep.py (e.g. --config.sweep.budget_lstm_cells='(64,)').
# sync: copies the small files of every finished trial (config, vocabulary, metrics,
# results) and the sweep's table back into FOLDER, writes its report from them, and
# FOLDER's run.sh and sync.sh (this script for PRESET); checkpoints stay in SWEEP_DIR.
set -euo pipefail
action="$1"
preset="$2"
folder="$3"
here="$(cd "$(dirname "$0")/.." && pwd)/$folder"
sweep_dir="$4"
shift 4
cd "$(dirname "$0")/../../.."  # The repository root.
config="configs/sweeps/paper_table.py:$preset"
case "$action" in
  run)
    mkdir -p "$sweep_dir/trials"
    for t in "$here"/trials/*/; do
      [ -d "$t" ] || continue
      name="$(basename "$t")"
      [ -e "$sweep_dir/trials/$name/results.json" ] || {
        mkdir -p "$sweep_dir/trials/$name"
        cp "$t"* "$sweep_dir/trials/$name/"
      }
    done
    python experiments/sweep.py --config="$config" --sweep_dir="$sweep_dir" "$@"
    ;;
  sync)
    for t in "$sweep_dir"/trials/*/; do
      [ -e "$t/results.json" ] || continue
      name="$(basename "$t")"
      mkdir -p "$here/trials/$name"
      cp "$t"/{config.json,vocab.json,metrics.jsonl,results.json} "$here/trials/$name/"
    done
    rm -f "$here/finished.json"  # Kept only while the sweep says it has finished.
    for f in results.csv budgets.json finished.json report.md; do
      [ -e "$sweep_dir/$f" ] && cp "$sweep_dir/$f" "$here/"
    done
    for a in run sync; do
      printf '%s\n' '#!/bin/bash' \
        "# Made by docs/results/paper_2015/table.sh: Table 1 of the 2015 paper to convergence" \
        "# (configs/sweeps/paper_table.py:$preset), $a step. Resumable; see table.sh." \
        "#   bash docs/results/$folder/$a.sh [SWEEP_DIR] [FLAGS...]" \
        "exec bash \"\$(dirname \"\$0\")/../paper_2015/table.sh\" $a $preset $folder \"\${1:-runs/$folder}\" \"\${@:2}\"" \
        > "$here/$a.sh"
    done
    # The report from the trials finished so far (the sweep writes it again at its end).
    python experiments/sweep.py --config="$config" --sweep_dir="${here#"$PWD/"}" \
      --report_only > /dev/null
    ;;
  *)
    echo "table.sh: unknown action '$action'; use run or sync" >&2
    exit 2
    ;;
esac
