"""Robust verdicts: does an A/B difference survive a change of the simulated user model?

A simulated A/B test answers "is B better than A for these users?", but the users are a
model, and a different (equally defensible) model of taste can reverse the answer: the
audit of issue 16 found that each taste family makes its own recommender win. So the same
comparison is run under several taste families (scenarios/taste.py) and, for every pair of
arms and metric, the per-family verdicts (sign of the difference, significant or not after
Holm over the metrics of the pair) are classified:

- ``robust``: significant in every family, with the same sign;
- ``not separated``: significant in no family;
- ``depends on the user model``: anything else; the families that reverse the majority
  sign, and those that do not separate the pair, are named.

``classify`` is the rule, ``pairwise`` computes the per-family verdicts from arm tables
with the paired bootstrap and sign-flip test of simulations/analysis/paired.py.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from simulations.analysis.paired import holm, paired_difference
from simulations.analysis.user_stats import ArmTable

__all__ = ["DEPENDS", "NOT_SEPARATED", "ROBUST", "classify", "pairwise", "robustness"]

ROBUST = "robust"
DEPENDS = "depends on the user model"
NOT_SEPARATED = "not separated"


def classify(verdicts: Mapping[str, tuple[float | None, bool]]) -> dict[str, Any]:
    """Classify one pair and metric from its per-family ``(difference, significant)``.

    Returns the class, the majority sign (+1: the second arm higher, -1: lower, 0: none),
    the families that flip it (significant with the other sign) and those that do not
    separate the pair.
    """
    if not verdicts:
        raise ValueError("classify: no families")
    sig = {f: (d or 0.0) > 0 for f, (d, s) in verdicts.items() if s and d}
    unsep = sorted(f for f, (d, s) in verdicts.items() if not (s and d))
    up = sorted(f for f, pos in sig.items() if pos)
    down = sorted(f for f, pos in sig.items() if not pos)
    if not sig:
        return {"verdict": NOT_SEPARATED, "sign": 0, "flipped_by": [], "unseparated_by": unsep}
    if not unsep and (not up or not down):
        return {"verdict": ROBUST, "sign": 1 if up else -1, "flipped_by": [],
                "unseparated_by": []}
    # Majority of the significant families; a tie goes to the first family's sign.
    first = next(f for f in verdicts if f in sig)
    sign = 1 if len(up) > len(down) or (len(up) == len(down) and sig[first]) else -1
    return {"verdict": DEPENDS, "sign": sign, "flipped_by": down if sign > 0 else up,
            "unseparated_by": unsep}


def pairwise(tables: Mapping[str, ArmTable], metrics: Sequence[str], *, alpha: float = 0.05,
             resamples: int = 1000, permutations: int = 1999, seed: int = 0
             ) -> list[dict[str, Any]]:
    """Every pair of arms (``b - a``, in the order given) per metric: the paired difference,
    its interval, the sign-flip p-value, Holm over the metrics of the pair, significance."""
    rows: list[dict[str, Any]] = []
    for a, b in itertools.combinations(tables, 2):
        block = []
        for m in metrics:
            r = paired_difference(tables[a], tables[b], m, resamples=resamples,
                                  permutations=permutations, seed=seed)
            block.append({"a": a, "b": b, "metric": m, **dataclasses.asdict(r)})
        for row, ph in zip(block, holm([r["p"] for r in block]), strict=True):
            row["p_holm"] = ph
            row["significant"] = ph is not None and ph < alpha
        rows += block
    return rows


def robustness(per_family: Mapping[str, Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per pair and metric, the classification of the per-family ``pairwise`` rows."""
    keyed: dict[tuple[str, str, str], dict[str, tuple[float | None, bool]]] = {}
    diffs: dict[tuple[str, str, str], dict[str, Any]] = {}
    for fam, rows in per_family.items():
        for r in rows:
            k = (r["a"], r["b"], r["metric"])
            keyed.setdefault(k, {})[fam] = (r["diff"], bool(r["significant"]))
            diffs.setdefault(k, {})[fam] = {
                "diff": r["diff"], "ci": [r["ci_low"], r["ci_high"]], "p_holm": r["p_holm"],
                "significant": bool(r["significant"])}
    out = []
    for (a, b, m), verdicts in keyed.items():
        c = classify(verdicts)
        vals = [d for d, _ in verdicts.values() if d is not None]
        out.append({"a": a, "b": b, "metric": m, **c,
                    "mean_diff": round(float(np.mean(vals)), 6) if vals else None,
                    "families": diffs[(a, b, m)]})
    return out
