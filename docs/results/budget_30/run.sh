# Dropout at 30 minutes on the AVX2 AMD EPYC: the shipped 30-minute config (dropout 0.1)
# and the same with no dropout, one after the other, nothing else running. From the
# repository root; each run's config, metrics, schedule and results are in this folder.
python experiments/train.py --config=configs/shakespeare_30min.py --workdir=runs/d30_ref
python experiments/train.py --config=configs/shakespeare_30min.py --workdir=runs/d30_nodrop \
    --config.model.dropout=0.0
# On a later day, the next rate below the search's winner (0.005 -> 0.003 had gained
# 0.016-0.022 on the Intel Xeon), same machine, nothing else running; the code re-times
# the schedule at 5, 25, 50, 75 and 90% (the two runs above re-timed once, 5% in).
python experiments/train.py --config=configs/shakespeare_30min.py --workdir=runs/d30_rate002 \
    --config.train.learning_rate=0.002
# Once the CPU kernels had AVX2 loops (model.recurrence=auto runs them on this machine
# from then on; the runs above ran the custom-VJP scan), the shipped config again,
# same machine, nothing else running; files in avx2_kernels/.
python experiments/train.py --config=configs/shakespeare_30min.py --workdir=runs/r30_avx2k
