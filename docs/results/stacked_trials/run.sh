#!/bin/bash
# Is training several same-shape small models in one compiled step (jax.vmap over their
# train states) faster than one model per step? The Table 1 sweep's shapes (1-layer
# LSTM of 64 cells, 1-layer RNN of 140; batch 100 x 100, RMSProp, no dropout), on one
# core as each of its trials runs (taskset -c 0), nothing else running.
cd "$(dirname "$0")/../../.."  # The repository root.
for shape in 'lstm:model.cell=lstm,model.num_layers=1,model.hidden_size=64' \
             'rnn:model.cell=rnn,model.num_layers=1,model.hidden_size=140'; do
  name="${shape%%:*}"
  s="${shape#*:},model.dropout=0.0"
  taskset -c 0 python experiments/step_time.py --config=configs/paper_inside.py:warpeace \
    --rounds=5 --steps=5 \
    --variants="$name kernels:$s" \
    --variants="$name scan:$s,model.recurrence=scan" \
    --variants="$name kernels x4:$s,impl.stack=4" \
    --variants="$name scan x4:$s,model.recurrence=scan,impl.stack=4" \
    --json_out="docs/results/stacked_trials/$name.json"
done
