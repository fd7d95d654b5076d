# A second round of 15-minute trials on the AVX2 AMD EPYC, fields the first search left
# out: Adam's second-moment decay (b2 0.99, as nanoGPT's character models), a smaller
# batch (more, noisier steps) and a wider batch of shorter windows. Each changes only
# that field of the shipped 15-minute config; then the shipped config itself as the
# same-day reference. One after the other, nothing else running, from the repository
# root. The first three ran at commit ee64eda (one re-timing, 5% in), the last at
# 446235c (re-timed at 5, 25, 50, 75 and 90%). Each run's config, metrics, schedule and
# results are in this folder: adam_b2_0.99/, batch_32/, batch_100_window_50/ and
# shipped_retimed/.
set -e
python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/r15_b2 \
    --config.train.adam_b2=0.99
python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/r15_batch32 \
    --config.train.batch_size=32
# The same characters per step (5,000) as 100 streams of 50: half the sequential steps,
# each a matmul twice as wide (char-rnn's own default window is 50).
python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/r15_b100_t50 \
    --config.train.batch_size=100 --config.train.seq_length=50
# The shipped config unchanged, on the code that re-times the schedule at 5, 25, 50, 75
# and 90% (the runs above, and the reference runs, re-timed once, 5% in).
python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/r15_retimed
# Then a higher peak rate (the first round tried only lower ones), at 446235c's
# re-timing, after a 30-minute run on the same machine.
python experiments/train.py --config=configs/shakespeare_15min.py --workdir=runs/r15_rate008 \
    --config.train.learning_rate=0.008
