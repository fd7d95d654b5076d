#!/bin/bash
# The architecture sweep's 21st trial (the transformer at 1.6M parameters, width 176),
# run on its own with that trial's config, on the 2-core AMD EPYC (AVX2).
cd "$(dirname "$0")/../../../.."  # The repository root.
python experiments/train.py --config=configs/shakespeare.py --workdir="${1:-runs}/arch_transformer_176" \
    --config.model.arch=transformer --config.model.hidden_size=176 --config.model.num_layers=4 \
    --config.model.num_heads=4 --config.model.context_length=128 --config.model.dropout=0.0 \
    --config.train.learning_rate=0.001 --config.train.lr_schedule=cosine \
    --config.train.warmup_steps=100 --config.train.end_lr_fraction=0.1 \
    --config.train.num_steps=1500 --config.eval.eval_every=250 --config.eval.sample_length=200
