"""Scale: models of equal parameter count, joint laws L(N, D), compute frontiers.

  * `num_params` / `hidden_for_budget`: the hidden size that gives a cell and depth
    a parameter budget, so that RNN, LSTM and GRU of 1, 2 and 3 layers can be
    compared at equal size (Karpathy, Johnson and Fei-Fei 2015, Table 1).
  * `fit_kaplan` and `fit_chinchilla`: the joint laws of loss against parameters N
    and training characters D of Kaplan et al. (2020),
        L(N, D) = [(N_c / N)^(a_N / a_D) + D_c / D]^a_D,
    and Hoffmann et al. (2022),
        L(N, D) = E + A / N^a + B / D^b,
    fitted by least squares from several starts, with leave-one-out error (to say
    which fits better) and bootstrap intervals over trials (`bootstrap`).
  * `training_flops` and `frontier`: compute per trial and the lowest loss
    reached at each compute.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Callable, Sequence

import ml_collections
import numpy as np

from rnnlm.errors import UserError

# ----------------------------------------------------------------------------
# Parameter budgets


@functools.lru_cache(maxsize=None)
def num_params(cell: str, num_layers: int, hidden_size: int, vocab_size: int,
               embed_dim: int = 0) -> int:
  """Parameters of a CharLM, counted from its abstract shapes (nothing allocated)."""
  import jax
  from flax import nnx
  from rnnlm.model import charlm as model_lib
  abstract = nnx.eval_shape(lambda: model_lib.CharLM(
      vocab_size, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
      embed_dim=embed_dim, rngs=nnx.Rngs(0)))
  return int(sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(abstract, nnx.Param))))


def hidden_for_budget(cell: str, num_layers: int, vocab_size: int, budget: int, *,
                      embed_dim: int = 0, multiple_of: int = 1) -> int:
  """The hidden size (a multiple of `multiple_of`) whose parameter count is closest
  to `budget`."""
  return closest_size(lambda h: num_params(cell, num_layers, h, vocab_size, embed_dim),
                      budget, multiple_of)


def config_params(model: ml_collections.ConfigDict, vocab_size: int) -> int:
  """Parameters of the model a config's `model` section describes (any arch)."""
  return _config_params(model.to_json(), vocab_size)


@functools.lru_cache(maxsize=None)
def _config_params(model_json: str, vocab_size: int) -> int:
  import jax
  from flax import nnx
  from rnnlm.model import charlm as model_lib
  config = ml_collections.ConfigDict({'model': json.loads(model_json), 'seed': 0})
  abstract = nnx.eval_shape(lambda: model_lib.from_config(config, vocab_size))
  return int(sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(abstract, nnx.Param))))


def closest_size(count: Callable[[int], int], budget: int, multiple_of: int = 1) -> int:
  """The size h (a multiple of `multiple_of`) whose count(h), growing with h, is
  closest to `budget`."""
  if budget < 1 or multiple_of < 1:
    raise UserError(f'a parameter budget and multiple must be positive (got {budget},'
                    f' {multiple_of})')
  at = lambda units: count(units * multiple_of)
  lo, hi = 1, 1
  while at(hi) < budget:
    lo, hi = hi, hi * 2
  while hi - lo > 1:
    mid = (lo + hi) // 2
    if at(mid) < budget:
      lo = mid
    else:
      hi = mid
  best = min((lo, hi), key=lambda u: abs(at(u) - budget))
  return best * multiple_of


# ----------------------------------------------------------------------------
# Joint laws L(N, D)


def kaplan(params: Sequence[float], n, d):
  """Kaplan et al. (2020), eq. 1.5; params = (log N_c, log D_c, a_N, a_D)."""
  log_nc, log_dc, a_n, a_d = params
  n, d = np.asarray(n, np.float64), np.asarray(d, np.float64)
  return (np.exp((log_nc - np.log(n)) * a_n / a_d) + np.exp(log_dc - np.log(d))) ** a_d


def chinchilla(params: Sequence[float], n, d):
  """Hoffmann et al. (2022), eq. 2; params = (E, log A, log B, a, b)."""
  e, log_a, log_b, a, b = params
  n, d = np.asarray(n, np.float64), np.asarray(d, np.float64)
  return e + np.exp(log_a - a * np.log(n)) + np.exp(log_b - b * np.log(d))


def _kaplan_named(p) -> dict:
  return {'N_c': float(np.exp(p[0])), 'D_c': float(np.exp(p[1])), 'a_N': float(p[2]),
          'a_D': float(p[3])}


def _chinchilla_named(p) -> dict:
  return {'E': float(p[0]), 'A': float(np.exp(p[1])), 'B': float(np.exp(p[2])),
          'a': float(p[3]), 'b': float(p[4])}


LAWS = {
    'kaplan': (kaplan, _kaplan_named,
               # Bounds: exponents in (0.01, 3); the scales anywhere sensible.
               ([-30.0, -30.0, 0.01, 0.01], [80.0, 80.0, 3.0, 3.0])),
    'chinchilla': (chinchilla, _chinchilla_named,
                   ([0.0, -30.0, -30.0, 0.01, 0.01], [20.0, 80.0, 80.0, 3.0, 3.0])),
}


def _starts(law: str, n, d, loss) -> list[np.ndarray]:
  """A small grid of initial points, each scaled to the data."""
  ln, ld, lmin = float(np.mean(np.log(n))), float(np.mean(np.log(d))), float(np.min(loss))
  out = []
  for a in (0.1, 0.3, 0.7):
    for b in (0.1, 0.3, 0.7):
      if law == 'kaplan':
        out.append(np.array([ln + 1.0, ld + 1.0, a, b]))
      else:
        for e in (0.5 * lmin, 0.9 * lmin):
          gap = max(lmin - e, 1e-3)
          out.append(np.array([e, math.log(gap) + a * ln, math.log(gap) + b * ld, a, b]))
  return out


def fit_law(law: str, n, d, loss, starts: Sequence[np.ndarray] | None = None) -> dict:
  """Least-squares fit of a joint law to points (N, D, loss), best of several starts.

  Returns:
    {'law', 'params' (named constants), 'x' (raw parameter vector), 'rmse', 'n'}.
  """
  from scipy.optimize import least_squares
  fn, named, bounds = LAWS[law]
  n, d, loss = (np.asarray(v, np.float64) for v in (n, d, loss))
  if len(loss) < len(bounds[0]) + 1:
    raise ValueError(f'the {law} law has {len(bounds[0])} constants; fit it to at least'
                     f' {len(bounds[0]) + 1} points (got {len(loss)})')
  best = None
  for x0 in (starts if starts is not None else _starts(law, n, d, loss)):
    x0 = np.clip(x0, np.array(bounds[0]) + 1e-9, np.array(bounds[1]) - 1e-9)
    with np.errstate(over='ignore', invalid='ignore'):
      r = least_squares(lambda p: np.nan_to_num(fn(p, n, d) - loss, nan=1e3, posinf=1e3),
                        x0, bounds=bounds, method='trf', x_scale='jac', max_nfev=4000)
    if best is None or r.cost < best.cost:
      best = r
  pred = fn(best.x, n, d)
  return {'law': law, 'params': named(best.x), 'x': [float(v) for v in best.x],
          'rmse': float(np.sqrt(np.mean((pred - loss) ** 2))), 'n': int(len(loss))}


def predict(fit: dict, n, d) -> np.ndarray:
  return LAWS[fit['law']][0](fit['x'], n, d)


def leave_one_out_rmse(law: str, n, d, loss, fit: dict) -> float:
  """Root mean squared error of each point predicted by a fit to the others."""
  n, d, loss = (np.asarray(v, np.float64) for v in (n, d, loss))
  errors = []
  for i in range(len(loss)):
    keep = np.arange(len(loss)) != i
    f = fit_law(law, n[keep], d[keep], loss[keep], starts=[np.array(fit['x'])]
                + _starts(law, n[keep], d[keep], loss[keep])[:3])
    errors.append(float(predict(f, n[i:i + 1], d[i:i + 1])[0] - loss[i]))
  return float(np.sqrt(np.mean(np.square(errors))))


def bootstrap(law: str, n, d, loss, fit: dict, resamples: int = 200, seed: int = 0
              ) -> dict:
  """95% percentile intervals of each named constant over fits to trials drawn
  with replacement. Returns {constant: [low, high]}."""
  n, d, loss = (np.asarray(v, np.float64) for v in (n, d, loss))
  rng = np.random.default_rng(seed)
  draws: dict[str, list[float]] = {k: [] for k in fit['params']}
  for _ in range(resamples):
    idx = rng.integers(0, len(loss), len(loss))
    if len(set(zip(n[idx], d[idx]))) < len(fit['x']) + 1:
      continue  # Too few distinct points to fit.
    f = fit_law(law, n[idx], d[idx], loss[idx], starts=[np.array(fit['x'])])
    for k, v in f['params'].items():
      draws[k].append(v)
  return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
          for k, v in draws.items() if v}


def fit_joint(n, d, loss, resamples: int = 200) -> dict:
  """Both laws fitted, compared by leave-one-out error, with bootstrap intervals.

  Returns:
    {'kaplan': fit, 'chinchilla': fit, 'better': name}, each fit with 'loo_rmse'
    and 'intervals'.
  """
  out = {}
  for law in LAWS:
    fit = fit_law(law, n, d, loss)
    fit['loo_rmse'] = leave_one_out_rmse(law, n, d, loss, fit)
    fit['intervals'] = bootstrap(law, n, d, loss, fit, resamples)
    out[law] = fit
  out['better'] = min(LAWS, key=lambda law: out[law]['loo_rmse'])
  return out


# ----------------------------------------------------------------------------
# Compute


def training_flops(num_params: int, chars_seen: int) -> float:
  """The usual estimate of training compute, 6 N D: a multiply-add per parameter per
  character forward (2N) and twice that backward (4N)."""
  return 6.0 * num_params * chars_seen


def frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
  """The lowest loss reached at or below each compute: the points (compute, loss)
  that no cheaper point beats, in order of compute."""
  out = []
  for c, loss in sorted(points):
    if not out or loss < out[-1][1]:
      out.append((c, loss))
  return out


def format_interval(value: float, interval: Sequence[float] | None, fmt: Callable = '{:.3g}'.format
                    ) -> str:
  if not interval:
    return fmt(value)
  return f'{fmt(value)} [{fmt(interval[0])}, {fmt(interval[1])}]'
