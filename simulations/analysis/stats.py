"""Small statistics shared by the fidelity evaluations: AUC, classification scores,
t-intervals over samples, and paired differences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["auc", "classification", "interval", "paired_interval"]


def auc(pos: Sequence[float] | np.ndarray, neg: Sequence[float] | np.ndarray) -> float | None:
    """P(score of a positive > score of a negative), ties counting one half.

    None when either side is empty.
    """
    p = np.asarray(pos, dtype=np.float64)[:, None]
    n = np.asarray(neg, dtype=np.float64)[None, :]
    if p.size == 0 or n.size == 0:
        return None
    return float((p > n).mean() + 0.5 * (p == n).mean())


def classification(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Accuracy, precision, recall and F1 (0 where undefined)."""
    total = tp + fp + fn + tn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / total if total else 0.0, "precision": precision,
            "recall": recall, "f1": f1}


def interval(values: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """Mean and a Student-t interval of the mean over independent samples.

    With one value the interval is the value itself (no spread to estimate).
    """
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    m = float(x.mean())
    half = 0.0
    if x.size > 1:
        half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1)
                     / np.sqrt(x.size))
    return {"mean": round(m, 4), "lo": round(m - half, 4), "hi": round(m + half, 4),
            "n": int(x.size)}


def paired_interval(a: Sequence[float], b: Sequence[float],
                    level: float = 0.95) -> dict[str, Any]:
    """Mean of ``a - b`` over paired units with its t-interval."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return interval(d.tolist(), level)
