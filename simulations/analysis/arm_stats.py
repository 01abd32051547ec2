"""Per-arm figures with their sample sizes and 95% intervals, for the run summary.

Users are the unit: every figure is a ratio of sums over users (the same micro-average
``simulations.analysis.metrics`` reports), and its interval is a percentile bootstrap that resamples
users with replacement, so a user's many impressions are not counted as independent
trials. Intervals of rates are clipped to [0, 1] (the bootstrap never leaves it; the clip
states the contract).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "FIELDS",
    "INTERVAL_METHOD",
    "RATES",
    "SCALES",
    "STAT_METRICS",
    "UserSums",
    "arm_stats",
]

# Per-user sums kept while reading the trace.
FIELDS = ("impressions", "watches", "rating_sum", "ratings", "pages_sum", "sessions",
          "satisfaction_sum", "interviews", "new_impressions", "new_watches",
          "conversations", "successes", "target_seen")
_COL = {f: k for k, f in enumerate(FIELDS)}
# metric -> (numerator, denominator); rates are shares in [0, 1].
STAT_METRICS: dict[str, tuple[str, str]] = {
    "watch_rate": ("watches", "impressions"),
    "mean_rating": ("rating_sum", "ratings"),
    "satisfaction": ("satisfaction_sum", "interviews"),
    "exit_page": ("pages_sum", "sessions"),
    # Of the items shown, the share that were new releases (add_items).
    "new_shown_rate": ("new_impressions", "impressions"),
    # Of the new releases shown, the share watched.
    "new_watched_rate": ("new_watches", "new_impressions"),
    "success_rate": ("successes", "conversations"),
    "recall_at_k": ("target_seen", "conversations"),
}
RATES = ("watch_rate", "new_shown_rate", "new_watched_rate", "success_rate", "recall_at_k")
# The scales figures are on, named in tables ("satisfaction (1-10)").
SCALES = {"mean_rating": "1-5", "satisfaction": "1-10"}
RESAMPLES = 1000
LEVEL = 0.95
INTERVAL_METHOD = (f"{LEVEL:.0%} percentile bootstrap over users ({RESAMPLES:,} resamples, "
                   "seed 0); rates clipped to [0, 1]")


class UserSums:
    """Sums per user of one arm, filled event by event (columns: ``fields``)."""

    def __init__(self, fields: Sequence[str] = FIELDS) -> None:
        self.fields = tuple(fields)
        self.col = _COL if self.fields == FIELDS else {f: k for k, f in enumerate(self.fields)}
        self.rows: dict[Any, np.ndarray] = {}

    def add(self, user: Any, field: str, value: float = 1.0) -> None:
        row = self.rows.get(user)
        if row is None:
            row = self.rows[user] = np.zeros(len(self.fields))
        row[self.col[field]] += value

    def matrix(self) -> np.ndarray:
        """Users x fields, users in sorted order (the bootstrap must not depend on the
        order events came in)."""
        if not self.rows:
            return np.zeros((0, len(self.fields)))
        keys = sorted(self.rows, key=str)
        return np.vstack([self.rows[k] for k in keys])


def _bootstrap_totals(x: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Column totals of ``x`` (users x fields) under ``resamples`` resamplings of its
    rows with replacement (resamples x fields), in chunks to bound memory."""
    n = x.shape[0]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1811]))
    chunk = max(1, min(resamples, 5_000_000 // max(n, 1)))
    out = []
    for lo in range(0, resamples, chunk):
        b = min(chunk, resamples - lo)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        w = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        out.append(w @ x)
    return np.vstack(out)


def arm_stats(sums: UserSums, *, names: Sequence[str], sessions: str,
              figures: Mapping[str, tuple[str, str]] = STAT_METRICS,
              resamples: int = RESAMPLES, seed: int = 0, ratings: bool = True,
              released: bool = False) -> dict[str, Any]:
    """Sample sizes and, per figure, its value with a 95% interval over users.

    Returns ``{"n_users", "n_sessions", "impressions", "interval": METHOD, "scales",
    METRIC: {"value", "lo", "hi", "n"} | None}``; a figure is None where it has no
    denominator, or no meaning here (new-item rates before any ``add_items`` release
    (``released``), the rating of data without ratings). ``n`` is the number of
    users the figure is averaged over (those with a non-zero denominator). ``names`` are
    the figures (keys of ``figures``: numerator and denominator fields of ``sums``), and
    ``sessions`` the field that counts an environment's sessions.
    """
    x = sums.matrix()
    n_users = x.shape[0]
    col = sums.col
    out: dict[str, Any] = {
        "n_users": n_users,
        "n_sessions": int(x[:, col[sessions]].sum()) if n_users else 0,
        "impressions": int(x[:, col["impressions"]].sum())
        if n_users and "impressions" in col else 0,
        "interval": INTERVAL_METHOD,
        "scales": {k: v for k, v in SCALES.items() if k in names},
    }
    boot = _bootstrap_totals(x, resamples, seed) if n_users > 1 else None
    for name in names:
        num, den = (col[f] for f in figures[name])
        total_den = x[:, den].sum() if n_users else 0.0
        if total_den <= 0 or (name == "mean_rating" and not ratings) or (
                name.startswith("new_") and not released):
            out[name] = None
            continue
        value = float(x[:, num].sum() / total_den)
        lo = hi = value
        if boot is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                r = boot[:, num] / boot[:, den]
            r = r[np.isfinite(r)]
            if r.size:
                lo, hi = (float(v) for v in np.quantile(r, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]))
        if name in RATES:
            lo, hi, value = max(lo, 0.0), min(hi, 1.0), min(max(value, 0.0), 1.0)
        out[name] = {"value": round(value, 6), "lo": round(lo, 6), "hi": round(hi, 6),
                     "n": int((x[:, den] > 0).sum())}
    return out


def stats_row(stats: Mapping[str, Any], key: str) -> str:
    """``value [lo, hi]`` of one figure (``-`` when it has none)."""
    v = stats.get(key)
    if not v:
        return "-"
    return f"{v['value']:.3f} [{v['lo']:.3f}, {v['hi']:.3f}]"
