"""Validity statistics with teeth: rank agreement over the learned arms only.

Random and popularity are trivially last for any simulator whose users have a taste, so a
rank correlation over all six arms mostly measures that. These statistics use only the
non-trivial (learned) arms:

- Kendall's tau and Spearman's rho between the arms' mean simulated metric and their mean
  held-out accuracy;
- pairwise agreement restricted to the pairs whose held-out difference is significant
  (paired bootstrap interval over users excludes 0): the share of those pairs the
  simulator orders the same way. A pair the held-out data cannot order is no evidence
  either way.

Each comes with a percentile bootstrap interval over users (the users are resampled
together for every arm, simulated and held-out values alike; the set of significant pairs
is fixed on the full sample).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

__all__ = ["TRIVIAL_ARMS", "learned_arms", "rank_stats", "significant_pairs", "summarise_seeds"]

TRIVIAL_ARMS = frozenset({"random", "pop"})


def learned_arms(models: Sequence[str]) -> list[str]:
    """The arms that learn from data (not random, not popularity)."""
    return [m for m in models if m not in TRIVIAL_ARMS]


def _corr(fn: Any, x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    v = float(fn(x, y).statistic)
    return None if not np.isfinite(v) else v


def significant_pairs(heldout: Mapping[str, np.ndarray], arms: Sequence[str], *,
                      resamples: int = 2000, confidence: float = 0.95, seed: int = 0
                      ) -> list[dict[str, Any]]:
    """Pairs ``(better, worse)`` of ``arms`` whose paired held-out difference is
    significant: the bootstrap interval of the mean per-user difference excludes 0."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    n = len(next(iter(heldout.values())))
    idx = rng.integers(0, n, size=(resamples, n))
    lo_q, hi_q = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    out = []
    for a, b in itertools.combinations(arms, 2):
        d = heldout[a] - heldout[b]
        boots = d[idx].mean(axis=1)
        lo, hi = np.percentile(boots, [lo_q, hi_q])
        mean = float(d.mean())
        sig = bool(lo > 0 or hi < 0)
        better, worse = (a, b) if mean > 0 else (b, a)
        out.append({"better": better, "worse": worse, "diff": round(abs(mean), 6),
                    "ci": [round(float(lo if mean > 0 else -hi), 6),
                           round(float(hi if mean > 0 else -lo), 6)],
                    "significant": sig})
    return out


def _stats(sim: np.ndarray, held: np.ndarray, pairs: Sequence[tuple[int, int]]
           ) -> tuple[float | None, float | None, float | None]:
    """Kendall, Spearman (arm means) and agreement on ``pairs`` (better, worse indices)."""
    tau = _corr(kendalltau, sim, held)
    rho = _corr(spearmanr, sim, held)
    agree = (float(np.mean([sim[b] > sim[w] for b, w in pairs])) if pairs else None)
    return tau, rho, agree


def rank_stats(sim: Mapping[str, np.ndarray], heldout: Mapping[str, np.ndarray],
               arms: Sequence[str], *, resamples: int = 1000, confidence: float = 0.95,
               seed: int = 0, pairs: Sequence[dict[str, Any]] | None = None
               ) -> dict[str, Any]:
    """Kendall's tau, Spearman's rho and significant-pair agreement over ``arms``.

    ``sim`` and ``heldout`` hold per-user values (same users, same order, no NaN) per arm.
    ``pairs`` (``significant_pairs`` rows) may come from a larger sample of held-out data;
    by default they are judged on ``heldout``.
    """
    arms = list(arms)
    s = np.vstack([np.asarray(sim[a], dtype=np.float64) for a in arms])
    h = np.vstack([np.asarray(heldout[a], dtype=np.float64) for a in arms])
    if pairs is None:
        pairs = significant_pairs(heldout, arms, seed=seed, confidence=confidence)
    pos = {a: k for k, a in enumerate(arms)}
    sig = [(pos[p["better"]], pos[p["worse"]]) for p in pairs if p["significant"]]
    point = _stats(s.mean(axis=1), h.mean(axis=1), sig)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    n = s.shape[1]
    boots: list[list[float]] = [[], [], []]
    for _ in range(resamples):
        idx = rng.integers(0, n, size=n)
        for k, v in enumerate(_stats(s[:, idx].mean(axis=1), h[:, idx].mean(axis=1), sig)):
            if v is not None:
                boots[k].append(v)
    lo_q, hi_q = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2

    def entry(k: int) -> dict[str, Any]:
        v = point[k]
        b = boots[k]
        return {"value": None if v is None else round(v, 4),
                "lo": round(float(np.percentile(b, lo_q)), 4) if b else None,
                "hi": round(float(np.percentile(b, hi_q)), 4) if b else None}

    sim_order = [arms[k] for k in np.argsort(-s.mean(axis=1), kind="stable")]
    return {"arms": arms, "kendall": entry(0), "spearman": entry(1),
            "agreement": {**entry(2), "pairs": len(sig)},
            "pairs": list(pairs), "sim_order": sim_order,
            "heldout_order": [arms[k] for k in np.argsort(-h.mean(axis=1), kind="stable")],
            "significant_ordered": all(s.mean(axis=1)[b] > s.mean(axis=1)[w] for b, w in sig)}


def summarise_seeds(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The distribution over seeds of each statistic's point value (never one seed)."""
    out: dict[str, Any] = {"seeds": len(per_seed)}
    for key in ("kendall", "spearman", "agreement"):
        vals = [float(r[key]["value"]) for r in per_seed if r[key]["value"] is not None]
        out[key] = ({"mean": round(float(np.mean(vals)), 4),
                     "min": round(float(np.min(vals)), 4),
                     "max": round(float(np.max(vals)), 4),
                     "values": [round(v, 4) for v in vals]} if vals else None)
    out["significant_pairs"] = sum(r["agreement"]["pairs"] for r in per_seed)
    # Only seeds where held-out data separates some pair can order them right or wrong
    # (a seed without one would count as "all ordered" vacuously).
    tested = [r for r in per_seed if r["agreement"]["pairs"]]
    out["significant_pair_seeds"] = len(tested)
    out["significant_ordered_seeds"] = sum(bool(r["significant_ordered"]) for r in tested)
    return out
