# The two 8-minute runs of docs/performance.md, "the transformer's context"; one after the other.
. .venv/bin/activate  # the README set-up
for mode in recompute cached; do
python experiments/train.py --config=configs/shakespeare.py --workdir=runs/ctx_$mode \
  --config.model.arch=transformer --config.model.hidden_size=96 --config.model.num_layers=4 \
  --config.model.num_heads=4 --config.model.context_length=128 --config.model.dropout=0.0 \
  --config.model.context_states=$mode --config.train.learning_rate=0.001 \
  --config.train.lr_schedule=cosine --config.train.warmup_steps=100 --config.train.end_lr_fraction=0.1 \
  --config.train.time_budget_minutes=8 --config.train.schedule_from_budget=True \
  --config.train.num_steps=1000000 --config.eval.eval_every=250 --config.eval.sample_length=200 > runs/ctx_$mode.log 2>&1
done
