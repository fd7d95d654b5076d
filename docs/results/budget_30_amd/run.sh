# Dropout at 30 minutes on the AVX2 AMD EPYC: the shipped 30-minute config (dropout 0.1)
# and the same with no dropout, one after the other, nothing else running. From the
# repository root; each run's config, metrics, schedule and results are in this folder.
python experiments/train.py --config=configs/shakespeare_30min.py --workdir=runs/d30_ref
python experiments/train.py --config=configs/shakespeare_30min.py --workdir=runs/d30_nodrop \
    --config.model.dropout=0.0
