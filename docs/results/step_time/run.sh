#!/bin/bash
# Whole training steps of config variants, interleaved rounds (docs/performance.md);
# the variants and round counts are those recorded in each JSON file.
cd "$(dirname "$0")/../../.."  # The repository root.
python experiments/step_time.py --config=configs/shakespeare.py --rounds=5 \
    --variants='float32:model.compute_dtype=float32' \
    --variants='bfloat16:model.compute_dtype=bfloat16' \
    --variants='float32 384:model.hidden_size=384' \
    --variants='bfloat16 384:model.hidden_size=384,model.compute_dtype=bfloat16' \
    --variants='float32 512:model.hidden_size=512' \
    --variants='bfloat16 512:model.hidden_size=512,model.compute_dtype=bfloat16' \
    --json_out=docs/results/step_time/amx_bf16.json
python experiments/step_time.py --config=configs/shakespeare.py --rounds=5 \
    --variants='256x50:train.batch_size=50' \
    --variants='256x128:train.batch_size=128' \
    --variants='384x50:model.hidden_size=384,train.batch_size=50' \
    --variants='384x128:model.hidden_size=384,train.batch_size=128' \
    --variants='512x50:model.hidden_size=512,train.batch_size=50' \
    --variants='512x128:model.hidden_size=512,train.batch_size=128' \
    --variants='gru384x128:model.cell=gru,model.hidden_size=384,train.batch_size=128' \
    --json_out=docs/results/step_time/batch_shapes.json
python experiments/step_time.py --config=configs/shakespeare.py --rounds=15 \
    --variants='no dropout:model.dropout=0.0' \
    --variants='bernoulli masks:impl.dropout=bernoulli' \
    --variants='16-bit lane masks:impl.dropout=lanes' \
    --json_out=docs/results/step_time/dropout.json
python experiments/step_time.py --config=configs/shakespeare.py --rounds=5 \
    --variants='minGRU 832 parallel:model.cell=mingru,model.hidden_size=832,model.dropout=0.0,model.recurrence=parallel' \
    --variants='minGRU 832 sequential:model.cell=mingru,model.hidden_size=832,model.dropout=0.0,model.recurrence=scan' \
    --variants='minLSTM 672 parallel:model.cell=minlstm,model.hidden_size=672,model.dropout=0.0,model.recurrence=parallel' \
    --variants='minLSTM 672 sequential:model.cell=minlstm,model.hidden_size=672,model.dropout=0.0,model.recurrence=scan' \
    --variants='LRU 448 parallel:model.cell=lru,model.hidden_size=448,model.dropout=0.0,model.recurrence=parallel' \
    --variants='LRU 448 sequential:model.cell=lru,model.hidden_size=448,model.dropout=0.0,model.recurrence=scan' \
    --json_out=docs/results/step_time/parallel_cells.json
python experiments/step_time.py --config=configs/shakespeare.py --rounds=5 \
    --variants='recompute:model.arch=transformer,model.num_layers=4,model.num_heads=4,model.dropout=0.0,model.hidden_size=192' \
    --variants='cached:model.arch=transformer,model.num_layers=4,model.num_heads=4,model.dropout=0.0,model.hidden_size=192,model.context_states=cached' \
    --json_out=docs/results/step_time/transformer_context.json
