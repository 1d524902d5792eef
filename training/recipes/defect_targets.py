"""What a degraded picture should score: defect strengths -> a target mean -> a 10-bin distribution.

The mapping, relative to the source photographs (taken as sound):

- an untouched view of a source photo scores :data:`CLEAN_MEAN` (8.0);
- each defect lowers the mean by :data:`DROP_AT_FULL_STRENGTH` x its strength
  (5.0 at strength 1, so one defect at full strength scores 3.0 and one at
  medium strength 5.5); several defects add up;
- the mean never falls below :data:`FLOOR_MEAN` (1.5).

The distribution is a Gaussian of :data:`SPREAD` bins (about the spread of
AVA's votes) sampled on bins 1..10 and normalised, its centre placed so the
distribution's mean is exactly the target mean.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

CLEAN_MEAN = 8.0
DROP_AT_FULL_STRENGTH = 5.0
FLOOR_MEAN = 1.5
SPREAD = 1.2
BINS = np.arange(1, 11, dtype=np.float64)


def target_mean(strengths: Iterable[float]) -> float:
    """The mean score for a picture carrying defects of these strengths (none: a clean view)."""
    drop = DROP_AT_FULL_STRENGTH * sum(strengths)
    return max(CLEAN_MEAN - drop, FLOOR_MEAN)


def _gaussian(centre: float, spread: float) -> np.ndarray:
    weights = np.exp(-0.5 * ((BINS - centre) / spread) ** 2)
    return weights / weights.sum()


def target_distribution(mean: float, spread: float = SPREAD) -> np.ndarray:
    """(10,) float32 probabilities over scores 1..10 whose mean is ``mean`` (1 < mean < 10)."""
    if not 1.0 < mean < 10.0:
        raise ValueError(f"a target mean must lie strictly between 1 and 10, got {mean}")
    # The distribution's mean grows monotonically with the Gaussian's centre: bisect for it.
    low, high = mean - 10.0, mean + 10.0
    for _ in range(60):
        centre = (low + high) / 2
        if float(_gaussian(centre, spread) @ BINS) < mean:
            low = centre
        else:
            high = centre
    return _gaussian((low + high) / 2, spread).astype(np.float32)
