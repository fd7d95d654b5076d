# 15-minute runs on the AVX2-only AMD EPYC once the CPU kernels had AVX2 loops
# (model.recurrence=auto runs them there from then on; the earlier 15-minute runs on this
# machine ran the custom-VJP scan). One after the other, nothing else running, from the
# repository root, after the benchmark in docs/performance.md and before/after a 30-minute
# run (docs/results/budget_30_amd/run.sh). Each run's config, metrics, schedule and
# results are in this folder.
set -e
# The shipped 15-minute config (2 x 256 GRU, no dropout, rate 0.006): shipped/.
python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/r15_avx2k
# Wider, now that the steps are cheaper: 320 units (hidden_320/), then 384 units with
# dropout 0.1 (hidden_384_dropout_0.1/), then 320 units again (hidden_320_second_run/).
python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/r15k_h320 \
    --config.model.hidden_size=320
python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/r15k_h384_d01 \
    --config.model.hidden_size=384 --config.model.dropout=0.1
python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/r15k_h320_b \
    --config.model.hidden_size=320
