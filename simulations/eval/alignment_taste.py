"""Taste alignment: does the simulated user pick what the real user liked?

For each seed, each user's page at ratio 1:m (positives and the first m negatives of each)
is scored by the brain and the baselines. Reported per scorer: the per-user AUC (mean over
users of each user's AUC), the pooled AUC (all positives against all negatives of all
users at once) and accuracy, precision, recall and F1 of the decisions (baselines: above a
threshold fitted on tuning users for that seed). The brain is read three ways: ``brain``
ranks by its noiseless utility (minus its threshold), ``brain_noisy`` by the utility with
the noise the simulated user actually experiences, ``brain_decisions`` by the watch
decisions themselves (ties between two watched or two skipped items count one half).
Figures are means with t-intervals over seeds; brain-minus-baseline AUC differences are
paired by seed. The popularity-only AUC of each positive against its own negatives is also
reported per popularity decile of the positive: near 0.5 in every decile means the
stratified matching leaves popularity nothing to find.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from agents.brains.base import Brain, DecisionFailure, PageObservation
from simulations.analysis.stats import auc, classification, interval
from simulations.eval.alignment_setup import AlignmentSetup, Task
from simulations.eval.baselines import TASTE_BASELINES, fit_threshold
from simulations.run.sampling import keyed_rng, popularity_deciles

__all__ = ["BRAIN_VIEWS", "METRICS", "pooled_auc", "summarise_taste", "taste_one_seed"]

Scorer = Callable[[int, np.ndarray], np.ndarray]
METRICS = ("auc", "auc_pooled", "accuracy", "precision", "recall", "f1")
BRAIN_VIEWS = ("brain", "brain_noisy", "brain_decisions")


def pooled_auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """Mann-Whitney AUC of all positives against all negatives (ties one half)."""
    if pos.size == 0 or neg.size == 0:
        return None
    r = rankdata(np.concatenate([pos, neg]))
    return float((r[:pos.size].sum() - pos.size * (pos.size + 1) / 2)
                 / (pos.size * neg.size))


class _Tally:
    """Per-user AUCs, pooled scores and confusion counts of one scorer at one ratio."""

    def __init__(self) -> None:
        self.tp = self.fp = self.fn = self.tn = 0
        self.aucs: list[float] = []
        self.pos: list[float] = []
        self.neg: list[float] = []

    def add(self, items: Sequence[int], truth: frozenset[int], scores: Sequence[float],
            watch: Sequence[bool] | None) -> None:
        pos = [s for i, s in zip(items, scores, strict=True) if i in truth]
        neg = [s for i, s in zip(items, scores, strict=True) if i not in truth]
        a = auc(pos, neg)
        if a is not None:
            self.aucs.append(a)
        self.pos.extend(pos)
        self.neg.extend(neg)
        if watch is None:
            return
        for i, w in zip(items, watch, strict=True):
            is_pos = i in truth
            self.tp += w and is_pos
            self.fp += w and not is_pos
            self.fn += (not w) and is_pos
            self.tn += (not w) and not is_pos

    def result(self, decisions: bool) -> dict[str, float]:
        out = {"auc": float(np.mean(self.aucs)) if self.aucs else 0.0,
               "auc_pooled": pooled_auc(np.asarray(self.pos), np.asarray(self.neg)) or 0.0}
        if decisions:
            out.update(classification(self.tp, self.fp, self.fn, self.tn))
        return out


def _brain_views(decision: Any) -> dict[str, tuple[list[float], list[bool] | None]]:
    """The brain's three readings of a page: noiseless score, noisy utility, decisions."""
    score, noisy, watch = [], [], []
    for d in decision.items:
        w = bool(d.watch)
        s = d.inputs.get("score")
        u = d.inputs.get("utility")
        watch.append(w)
        score.append(float(s) if s is not None else float(w))
        noisy.append(float(u) if u is not None else float(w))
    return {"brain": (score, watch), "brain_noisy": (noisy, None),
            "brain_decisions": ([float(w) for w in watch], None)}


def _thresholds(tuning: Sequence[Task], ratios: Sequence[int],
                scorers: Sequence[dict[str, Scorer]], seed: int) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {name: {} for name in TASTE_BASELINES}
    for m in ratios:
        for name in TASTE_BASELINES:
            s: list[float] = []
            y: list[bool] = []
            for t in tuning:
                items, truth = t.page(m, seed)
                s.extend(scorers[t.origin][name](t.user, np.asarray(items)).tolist())
                y.extend(i in truth for i in items)
            out[name][m] = fit_threshold(s, y)
    return out


def _decile_pairs(setups: Sequence[AlignmentSetup],
                  tasks: Sequence[Task]) -> dict[int, list[float]]:
    """Per decile of the positive: 1, 0.5 or 0 per (positive, its first negative) pair
    as popularity orders them (the 1:1 popularity-only AUC, pair by pair)."""
    out: dict[int, list[float]] = {d: [] for d in range(10)}
    deciles = [popularity_deciles(s.world.popularity) for s in setups]
    for t in tasks:
        pop = setups[t.origin].world.popularity
        for p, n in zip(t.positives, t.negatives[:, 0], strict=True):
            d = int(deciles[t.origin][p])
            out[max(d, 0)].append(float(pop[p] > pop[n]) + 0.5 * float(pop[p] == pop[n]))
    return out


def taste_one_seed(
    setups: Sequence[AlignmentSetup],
    brains: Sequence[Brain] | None,
    scorers: Sequence[dict[str, Scorer]],
    tasks: Sequence[Task],
    tuning: Sequence[Task],
    *,
    seed: int,
    ratios: Sequence[int],
    on_user: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Every scorer's metrics per ratio for one seed's draws, and the decile pairs."""
    thresholds = _thresholds(tuning, ratios, scorers, seed)
    names = (list(BRAIN_VIEWS) if brains is not None else []) + list(TASTE_BASELINES)
    per: dict[int, dict[str, dict[str, float]]] = {}
    failures = 0
    for m in ratios:
        tallies = {n: _Tally() for n in names}
        for t in tasks:
            items, truth = t.page(m, seed)
            arr = np.asarray(items)
            for name in TASTE_BASELINES:
                s = scorers[t.origin][name](t.user, arr)
                tallies[name].add(items, truth, s.tolist(),
                                  (s > thresholds[name][m]).tolist())
            if brains is not None:
                obs = PageObservation(setups[t.origin].profiles[t.user], 0, 1, items, ())
                try:
                    decision = brains[t.origin].decide_page(obs, keyed_rng(seed, t.user, m, 1))
                except DecisionFailure:
                    failures += 1
                else:
                    for view, (sc, watch) in _brain_views(decision).items():
                        tallies[view].add(items, truth, sc, watch)
            on_user()
        per[m] = {n: tallies[n].result(n not in BRAIN_VIEWS[1:]) for n in names}
    return {"per": per, "failures": failures, "deciles": _decile_pairs(setups, tasks),
            "thresholds": thresholds}


def summarise_taste(runs: Sequence[dict[str, Any]], ratios: Sequence[int],
                    with_brain: bool) -> dict[str, Any]:
    """Means and t-intervals over seeds; brain-minus-baseline AUCs paired by seed."""
    names = (list(BRAIN_VIEWS) if with_brain else []) + list(TASTE_BASELINES)
    out: dict[str, Any] = {}
    diff: dict[str, Any] = {}
    for m in ratios:
        rows: dict[str, Any] = {}
        for n in names:
            keys = [k for k in METRICS if k in runs[0]["per"][m][n]]
            rows[n] = {k: interval([r["per"][m][n][k] for r in runs]) for k in keys}
        out[f"1:{m}"] = rows
        if with_brain:
            diff[f"1:{m}"] = {
                b: {k: interval([r["per"][m]["brain"][k] - r["per"][m][b][k] for r in runs])
                    for k in ("auc", "auc_pooled")}
                for b in TASTE_BASELINES}
    deciles = {}
    for d in range(10):
        vals = [float(np.mean(r["deciles"][d])) for r in runs if r["deciles"][d]]
        deciles[str(d + 1)] = {"popularity_auc": interval(vals),
                               "pairs_per_seed": round(float(np.mean(
                                   [len(r["deciles"][d]) for r in runs])), 1)}
    return {"ratios": out, "brain_minus": diff,
            "popularity_auc_by_decile_1to1": deciles,
            "failures": int(sum(r["failures"] for r in runs)),
            "thresholds_first_seed": {n: {f"1:{m}": round(v, 6) for m, v in th.items()}
                                      for n, th in runs[0]["thresholds"].items()}}
