"""How well each cell tracks each text feature, and how often gates saturate.

A count feature is scored by Pearson's r between a cell's activation and the
feature over all characters; an on/off feature by the ROC AUC of the activation
as a detector of "on" (0.5 is chance; below 0.5 the cell fires for "off", so
the strength of either is |r| and |AUC - 0.5| * 2, both in [0, 1]).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats

from rnnlm.studies.inside import features as features_lib


def pearson(acts: np.ndarray, feature: np.ndarray) -> np.ndarray:
  """Pearson r of each column of acts [N, H] with feature [N]; 0 where either is constant."""
  a = np.asarray(acts, np.float64)
  f = np.asarray(feature, np.float64)
  a = a - a.mean(axis=0)
  f = f - f.mean()
  denom = np.sqrt((a * a).sum(axis=0) * (f * f).sum())
  with np.errstate(invalid='ignore', divide='ignore'):
    r = (a * f[:, None]).sum(axis=0) / denom
  return np.where(denom > 0, r, 0.0)


def roc_auc(acts: np.ndarray, positive: np.ndarray, ranks: np.ndarray | None = None
            ) -> np.ndarray:
  """ROC AUC of each column of acts [N, H] as a score for positive [N] (bool).

  The Mann-Whitney form: the probability that a random positive scores above a
  random negative, ties counted half. 0.5 where a class is empty. `ranks` (the
  columns' ranks, `column_ranks(acts)`) spares ranking again for each feature.
  """
  positive = np.asarray(positive, bool)
  n_pos = int(positive.sum())
  n_neg = len(positive) - n_pos
  if n_pos == 0 or n_neg == 0:
    return np.full(np.shape(acts)[1], 0.5)
  if ranks is None:
    ranks = column_ranks(acts)
  rank_sum = ranks[positive].sum(axis=0, dtype=np.float64)
  return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def column_ranks(acts: np.ndarray) -> np.ndarray:
  """Ranks (1-based, ties averaged) of each column of acts [N, H]."""
  return stats.rankdata(np.asarray(acts, np.float32), axis=0)


def strength(kind: str, score: np.ndarray) -> np.ndarray:
  """|r| for counts, |AUC - 0.5| * 2 for on/off features: 0 none, 1 perfect."""
  return np.abs(score) if kind == 'count' else np.abs(score - 0.5) * 2


@dataclasses.dataclass
class CellScore:
  feature: str
  kind: str  # 'count' (Pearson r) or 'binary' (ROC AUC)
  layer: int
  name: str  # 'h', 'c', or a gate
  unit: int
  score: float  # r or AUC
  strength: float

  @property
  def cell(self) -> str:
    return f'L{self.layer + 1}.{self.name}[{self.unit}]'  # Layers 1-based, as in --layer.


def score_all(states: dict, feats: dict[str, np.ndarray], names=('h', 'c')
              ) -> dict[str, list[CellScore]]:
  """Every cell of `states` ({(layer, name): [N, H]}, only `names`) against every
  feature; per feature, the cells sorted strongest first."""
  scored = {f: [] for f, v in feats.items() if not np.all(v == v[0])}  # Constant: skipped.
  for (layer, name), acts in states.items():
    if name not in names:
      continue
    ranks = None
    for feature in scored:
      kind = features_lib.KINDS[feature]
      if kind == 'count':
        s = pearson(acts, feats[feature])
      else:
        ranks = column_ranks(acts) if ranks is None else ranks
        s = roc_auc(acts, feats[feature], ranks)
      st = strength(kind, s)
      scored[feature] += [CellScore(feature, kind, layer, name, u, float(s[u]), float(st[u]))
                          for u in range(len(s))]
  for cells in scored.values():
    cells.sort(key=lambda c: -c.strength)
  return scored


def saturation(states: dict, low: float = 0.1, high: float = 0.9
               ) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
  """For each sigmoid gate of each layer, the fraction of characters at which each
  unit is left-saturated (< low) and right-saturated (> high)."""
  out = {}
  for (layer, name), acts in states.items():
    if name in ('i', 'f', 'o', 'r', 'z'):  # Sigmoid gates of the LSTM and GRU.
      a = np.asarray(acts, np.float32)
      out[(layer, name)] = ((a < low).mean(axis=0), (a > high).mean(axis=0))
  return out
