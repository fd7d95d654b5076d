#!/bin/bash
# The compiled kernels at hidden sizes that are not a multiple of 16 (run padded to the
# next multiple) against the scan path, at the shapes of the War and Peace Table 1
# sweep's 64-cell budget (batch 100 x 100, RMSProp, no dropout), on one core as each of
# its trials runs (taskset -c 0), nothing else running.
cd "$(dirname "$0")/../../.."  # The repository root.
for shape in rnn:1:140 rnn:2:95 rnn:3:77 lstm:2:45 lstm:3:37 gru:1:76 gru:2:53 gru:3:43; do
  IFS=: read -r cell layers hidden <<< "$shape"
  s="model.cell=$cell,model.num_layers=$layers,model.hidden_size=$hidden,model.dropout=0.0"
  taskset -c 0 python experiments/step_time.py --config=configs/paper_inside.py:warpeace \
    --rounds=5 --steps=5 \
    --variants="$cell $layers x $hidden kernels:$s,model.recurrence=kernel" \
    --variants="$cell $layers x $hidden scan:$s,model.recurrence=scan" \
    --json_out="docs/results/padded_kernels/$cell-$layers-$hidden.json"
done
