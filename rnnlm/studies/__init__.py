"""The studies layer: what is measured about models, apart from how they are trained.

- `sweep`: many runs over a grid (local processes or SLURM through submitit);
- `paper_table`, `joint`, `architectures` (with `scale_common`): the scale
  experiments; `scaling`: parameter budgets and scaling-law fits;
- `emergence` (measures on strings) and `emergence_runs` (the runs behind them);
- `inside/`: interpretable cells, n-gram baselines, error analysis, the HTML page;
- `plots`, `report`: figures and markdown reports.
"""
