#!/bin/bash
# The training and sampling benchmark (rnnlm against PyTorch and Flax, one process,
# interleaved), on an otherwise idle machine; one table per machine.
cd "$(dirname "$0")/../../.."
python experiments/benchmark.py --json_out=docs/results/benchmarks/xeon_avx512.json \
    > docs/results/benchmarks/xeon_avx512.md
# The AMD EPYC (AVX2 only) table, without the Flax and autodiff rows:
#   python experiments/benchmark.py --flax=False --reference=False --repeats=5 \
#       --json_out=docs/results/benchmarks/amd_epyc_avx2.json > docs/results/benchmarks/amd_epyc_avx2.md
# The transformer rows (AMD EPYC):
#   python experiments/benchmark.py --cells=lstm --hidden=128 --transformer_hidden=96,192 \
#       --json_out=docs/results/benchmarks/transformer_amd_epyc_avx2.json
