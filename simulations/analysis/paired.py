"""Paired statistics for arms that met the same users.

A difference between arms B and A of a metric is computed on the same users. Its
confidence interval is a paired bootstrap: resample users with replacement, recompute the
metric of both arms on the resample (so a user's two outcomes stay together), take
percentiles of the difference. Its test is a paired permutation (sign-flip) test: under
the null hypothesis that the arm makes no difference, swapping a user's two outcomes
leaves the distribution unchanged; it is exact (all 2^n swaps) when 2^n is at most the
number of resamples.

Both use the statistic reported in summaries (ratio of sums over users, Gini over exposure),
not a per-user average, so the interval, the test and the table agree. The test computes
what ``scipy.stats.permutation_test`` computes, vectorised (see ``sign_flip_pvalue``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulations.analysis.user_stats import (
    ArmTable,
    metric_from_totals,
    metric_values,
    needs_exposure,
    ratio_columns,
)

__all__ = ["NO_INTERVAL", "PairedResult", "holm", "paired_difference", "sign_flip_pvalue",
           "spread", "value_ci"]

# Exposure metrics depend on how many distinct users there are: a bootstrap resample
# repeats some users and leaves others out, so it shows fewer distinct items (coverage
# falls) and concentrates exposure (Gini rises); for a random recommender the whole
# interval can miss the estimate. They get no interval; the permutation test, computed at
# full size, stays valid for them.
NO_INTERVAL = frozenset({"coverage", "gini"})


@dataclass(frozen=True)
class PairedResult:
    baseline_value: float | None
    arm_value: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


def _weights_of(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Counts (batch, n_rows) of integer row indices (batch, k): how often each row is
    drawn."""
    r = np.atleast_2d(rows).astype(np.int64)
    flat = (np.arange(r.shape[0])[:, None] * n_rows + r).ravel()
    return np.bincount(flat, minlength=r.shape[0] * n_rows).reshape(r.shape[0], n_rows
                                                                    ).astype(np.float64)


def _percentiles(d: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None, None
    lo, hi = np.percentile(d, [50 * (1 - confidence), 50 * (1 + confidence)])
    return _num(float(lo)), _num(float(hi))


def _bootstrap_diff(a: ArmTable, b: ArmTable, metric: str, resamples: int,
                    confidence: float, seed: int) -> tuple[float | None, float | None]:
    """Percentile interval of metric(B) - metric(A) over users resampled with replacement
    (the same resample for both arms)."""
    n = len(a.users)
    rng = np.random.default_rng(seed)
    boot = np.empty(resamples)
    step = max(1, min(resamples, 2_000_000 // max(n, 1)))
    for start in range(0, resamples, step):
        k = min(step, resamples - start)
        w = _weights_of(rng.integers(0, n, size=(k, n)), n)
        boot[start:start + k] = metric_values(metric, w, b) - metric_values(metric, w, a)
    return _percentiles(boot, confidence)


def paired_difference(
    a: ArmTable, b: ArmTable, metric: str, *, resamples: int = 2000,
    permutations: int = 9999, confidence: float = 0.95, seed: int = 0,
) -> PairedResult:
    """Metric of B minus metric of A over the same users (rows must match), with a paired
    bootstrap percentile interval (none for coverage and Gini, see ``NO_INTERVAL``) and a
    two-sided
    paired permutation test p-value."""
    if a.users != b.users or a.items != b.items:
        raise ValueError("paired arms must have the same users and item columns")
    n = len(a.users)
    ones = np.ones((1, n))
    va = float(metric_values(metric, ones, a)[0])
    vb = float(metric_values(metric, ones, b)[0])
    diff = vb - va
    if n == 0 or not np.isfinite(diff):
        return PairedResult(_num(va), _num(vb), None, None, None, None)
    if metric in NO_INTERVAL:
        lo = hi = None
    else:
        lo, hi = _bootstrap_diff(a, b, metric, resamples, confidence, seed)

    p = sign_flip_pvalue(a, b, metric, diff, permutations=permutations, seed=seed)
    return PairedResult(_num(va), _num(vb), _num(diff), lo, hi, p)


def sign_flip_pvalue(a: ArmTable, b: ArmTable, metric: str, observed: float, *,
                     permutations: int = 9999, seed: int = 0) -> float:
    """Two-sided p-value of a paired permutation test of metric(B) - metric(A).

    Each resample swaps the two outcomes of a random subset of users (all 2^n subsets when
    2^n <= ``permutations``: an exact test). The p-value follows
    ``scipy.stats.permutation_test(..., permutation_type="samples")`` exactly (its +1
    adjustment for random resamples, its tolerance for ties, two-sided as twice the smaller
    tail); the suite checks the two agree. Vectorised here because scipy's loop over
    resamples costs seconds per test at a thousand users, and a comparison runs hundreds.
    """
    n = len(a.users)
    exact = n < 63 and 2 ** n <= permutations
    total = 2 ** n if exact else permutations
    rng = np.random.default_rng(seed)
    # Swapping user i's outcomes moves arm A's totals by B_i - A_i and B's by the opposite.
    cols = ratio_columns(metric, a.fields)
    sums_a, sums_b = a.sums[:, cols].sum(axis=0), b.sums[:, cols].sum(axis=0)
    delta = b.sums[:, cols] - a.sums[:, cols]
    expo = needs_exposure(metric)
    if expo:
        exp_a = np.asarray(a.exposure.sum(axis=0)).ravel()
        exp_b = np.asarray(b.exposure.sum(axis=0)).ravel()
        exp_delta_t = (b.exposure - a.exposure).T.tocsr()
    step = max(1, 4_000_000 // max(n + (len(a.items) if expo else 0), 1))
    less = greater = 0
    gamma = abs(np.finfo(np.float64).eps * 100 * observed)
    for start in range(0, total, step):
        k = min(step, total - start)
        if exact:
            codes = np.arange(start, start + k, dtype=np.int64)[:, None]
            swap = ((codes >> np.arange(n, dtype=np.int64)) & 1).astype(np.float64)
        else:
            # Fair coin per user from random bytes: 8 users a byte, far cheaper than
            # drawing integers one by one.
            raw = rng.integers(0, 256, size=(k, (n + 7) // 8), dtype=np.uint8)
            swap = np.unpackbits(raw, axis=1)[:, :n].astype(np.float64)
        moved = swap @ delta
        ex_a = ex_b = None
        if expo:
            moved_exp = np.asarray(exp_delta_t @ swap.T).T
            ex_a, ex_b = exp_a + moved_exp, exp_b - moved_exp
        null = np.nan_to_num(metric_from_totals(metric, sums_b - moved, ex_b, b.n_items)
                             - metric_from_totals(metric, sums_a + moved, ex_a, a.n_items))
        less += int(np.count_nonzero(null <= observed + gamma))
        greater += int(np.count_nonzero(null >= observed - gamma))
    adj = 0 if exact else 1
    p = 2 * min((less + adj) / (total + adj), (greater + adj) / (total + adj))
    return float(min(max(p, 0.0), 1.0))


def value_ci(table: ArmTable, metric: str, *, resamples: int = 1000,
             confidence: float = 0.95, seed: int = 0
             ) -> tuple[float | None, float | None, float | None]:
    """One arm's metric with a bootstrap percentile interval over its users."""
    n = len(table.users)
    if n == 0:
        return None, None, None
    value = float(metric_values(metric, np.ones((1, n)), table)[0])
    if not np.isfinite(value):
        return None, None, None
    if metric in NO_INTERVAL:
        return _num(value), None, None
    rng = np.random.default_rng(seed)
    w = _weights_of(rng.integers(0, n, size=(resamples, n)), n)
    lo, hi = _percentiles(metric_values(metric, w, table), confidence)
    return _num(value), lo, hi


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None stays None and does not count)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    order = sorted(idx, key=lambda i: pvalues[i] or 0.0)
    m = len(order)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i] or 0.0)))
        out[i] = running
    return out


def spread(per_seed: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Across seeds, per (baseline, arm, group, metric): mean, sd, min and max of the
    difference and in how many seeds it was significant."""
    rows: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for seed_rows in per_seed:
        for r in seed_rows:
            rows[(r["baseline"], r["arm"], r["group"], r["metric"])].append(r)
    out = []
    for (base, arm, group, metric), rs in rows.items():
        d = np.array([r["diff"] for r in rs if r["diff"] is not None], dtype=np.float64)
        out.append({
            "baseline": base, "arm": arm, "group": group, "metric": metric,
            "seeds": len(rs),
            "mean_diff": _num(float(d.mean())) if d.size else None,
            "sd": _num(float(d.std(ddof=1))) if d.size > 1 else None,
            "min": _num(float(d.min())) if d.size else None,
            "max": _num(float(d.max())) if d.size else None,
            "significant_seeds": sum(bool(r["significant"]) for r in rs),
        })
    return out
