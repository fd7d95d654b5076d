"""The training layer: the train loop and what it calls, and what a trained model is
used for. Imports data and model, never studies.

- `train`: `train_and_evaluate`, the loop that reads top to bottom;
- `steps`: train state, `train_step`, `eval_step`, the jitted steps, split loss;
- `optim`: learning-rate schedules and the optimizer;
- `periodic`: the units the loop calls each step (evaluation, stopping, signals ...);
- `budget`: a time-budgeted run's schedule and its re-timing;
- `run_files`: config.json, metrics.jsonl, samples/, results.json, TensorBoard;
- `checkpoint`: Orbax checkpoints, `load_model`;
- `parallel`: the device mesh, sharding, several processes and hosts;
- `storage`: a full or read-only disk turned into one line;
- `finetune`, `evaluation`, `sample`, `hostmem`.
"""
