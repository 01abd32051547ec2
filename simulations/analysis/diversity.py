"""Diversity and concentration figures (no engine): exposure Gini and genre entropy."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["genre_entropy", "gini"]


def gini(counts: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal exposure, -> 1 = concentrated)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2.0 * (ranks * x).sum()) / (n * x.sum()) - (n + 1.0) / n)


def genre_entropy(genre_lists: Iterable[Sequence[str]]) -> float:
    """Shannon entropy (bits) of the genre distribution of a set of items.

    Each item spreads one unit of weight evenly over its genres.
    """
    w: dict[str, float] = defaultdict(float)
    for gs in genre_lists:
        for g in gs:
            w[g] += 1.0 / len(gs)
    total = sum(w.values())
    if total <= 0:
        return 0.0
    return float(-sum((v / total) * math.log2(v / total) for v in w.values() if v > 0))
