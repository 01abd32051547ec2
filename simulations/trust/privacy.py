"""Attribute inference from a run's traces: how well do simulated watch histories reveal
a user's gender or age band?

The attack is a logistic regression on each user's item vector (1 where the user
watched the item), cross-validated (stratified ``folds``-fold, out-of-fold scores); the
figure is the AUC of its out-of-fold scores (gender: binary; age band: macro one-vs-rest
over the bands with at least ``folds`` users). Beside the simulated watches of each arm,
the same attack on the same users' real MovieLens interactions: their held-out future
(what they really watched after the run's cutoff: the counterpart of simulated watches)
and their history (what the simulated users were built from); and a random-taste null:
each user's watches replaced by as many items drawn by history popularity, which carries
no attribute (AUC about 0.5; its spread says how far from 0.5 chance alone goes).

Users are the run's test users (simulations/run/sampling.py) with a history (one who
watched nothing in an arm has an empty row there); the real future is attacked on those
of them who have one (under the leak-free global split few MovieLens 100K users do). The
AUC is the mean over ``seeds`` CV shuffles; its interval is a percentile bootstrap over
users of the first shuffle's out-of-fold scores, conditional on the fitted attack; the
test is a label-permutation null (``permutations``: the whole cross-validated attack on
shuffled labels), whose 95% range says how far from 0.5 chance alone goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from scenarios.demographics import age_band
from simulations.record.trace import iter_trace
from simulations.run.sampling import user_split
from tools.dataset import Dataset, split_interactions

__all__ = ["ATTACKED", "attack_auc", "privacy_of_run", "simulated_watches"]

ATTACKED = ("gender", "age")


def simulated_watches(run_dir: str | Path) -> tuple[dict[str, dict[str, set[str]]],
                                                     dict[str, Any], list[str]]:
    """Per arm, per user id, the catalogue ids the user watched; ``run_start``; and the
    users with a profile event."""
    out: dict[str, dict[str, set[str]]] = {}
    start: dict[str, Any] = {}
    profiled: list[str] = []
    for ev in iter_trace(run_dir):
        t = ev.get("type")
        if t == "run_start":
            start = ev
        elif t == "profile":
            profiled.append(str(ev["user"]))
        elif t == "decision" and ev.get("action") == "watch" and ev.get("item") is not None:
            out.setdefault(str(ev["arm"]), {}).setdefault(str(ev["user"]), set()).add(
                str(ev["item"]))
    return out, start, profiled


def _labels(attr: str, attrs: Sequence[Mapping[str, str]]) -> list[str | None]:
    if attr == "age":
        return [age_band(a.get("age")) for a in attrs]
    return [(a.get(attr) or None) for a in attrs]


def _oof_scores(x: sp.csr_matrix, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    clf = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return np.asarray(cross_val_predict(clf, x, y, cv=cv, method="predict_proba"))


def _auc(y: np.ndarray, p: np.ndarray, classes: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(classes) == 2:
        return float(roc_auc_score(y == classes[1], p[:, 1]))
    return float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=classes))


def attack_auc(x: sp.csr_matrix, labels: Sequence[str], *, folds: int = 5,
               seeds: int = 3, resamples: int = 200, seed: int = 0,
               permutations: int = 0) -> dict[str, Any]:
    """Cross-validated AUC of the attack on rows ``x`` with ``labels`` (see the module
    doc). Classes with fewer than ``folds`` users are dropped first.

    With ``permutations``, the whole attack (cross-validation included) is repeated on
    shuffled labels: ``null`` holds the mean and 2.5-97.5 percentiles of those AUCs and
    ``p`` the one-sided permutation p-value ``(1 + #null >= auc) / (1 + permutations)``.
    That is the test: the bootstrap interval is conditional on the fitted attack and
    misses the variability of fitting it (on pure noise, out-of-fold AUCs of 0.4-0.6
    are common at a hundred users)."""
    y = np.asarray(labels, dtype=object)
    values, counts = np.unique(y, return_counts=True)
    keep_cls = values[counts >= folds]
    keep = np.isin(y, keep_cls)
    x, y = x[keep], y[keep].astype(str)
    # Items at most one of these users touched cannot generalise across folds; dropping
    # them changes nothing but the solver's time.
    shared = np.flatnonzero(np.asarray((x != 0).sum(axis=0)).ravel() >= 2)
    # With nothing shared (a random recommender's scattered watches) every column stays:
    # the attack then has nothing to learn from, and says so with an AUC near 0.5.
    x = (x[:, shared] if shared.size else x).tocsr()
    if x.shape[1] == 0:
        x = sp.csr_matrix((x.shape[0], 1))
    classes = np.unique(y)
    if len(classes) < 2:
        return {"auc": None, "ci_low": None, "ci_high": None, "users": int(keep.sum()),
                "classes": classes.tolist(), "per_seed": []}
    per_seed, first = [], None
    for s in range(seeds):
        p = _oof_scores(x, y, folds, seed + s)
        per_seed.append(_auc(y, p, classes))
        first = p if first is None else first
    assert first is not None
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(resamples):
        idx = rng.integers(0, len(y), size=len(y))
        if len(np.unique(y[idx])) < len(classes):
            continue
        boot.append(_auc(y[idx], first[idx], classes))
    lo, hi = (np.percentile(boot, [2.5, 97.5]) if boot else (np.nan, np.nan))
    auc = float(np.mean(per_seed))
    out: dict[str, Any] = {
        "auc": round(auc, 4), "ci_low": round(float(lo), 4), "ci_high": round(float(hi), 4),
        "users": len(y), "classes": classes.tolist(),
        "per_seed": [round(v, 4) for v in per_seed]}
    if permutations:
        prng = np.random.default_rng([seed, 13])
        null = [_auc(yp, _oof_scores(x, yp, folds, seed), classes)
                for yp in (prng.permutation(y) for _ in range(permutations))]
        nlo, nhi = np.percentile(null, [2.5, 97.5])
        out["null"] = {"mean": round(float(np.mean(null)), 4), "lo": round(float(nlo), 4),
                       "hi": round(float(nhi), 4), "permutations": permutations}
        out["p"] = round((1 + sum(v >= per_seed[0] for v in null)) / (1 + permutations), 4)
    return out


def _matrix(rows: Sequence[set[int]], n_items: int) -> sp.csr_matrix:
    r = [k for k, s in enumerate(rows) for _ in s]
    c = [i for s in rows for i in sorted(s)]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def privacy_of_run(run_dir: str | Path, dataset: Dataset, *, arms: Sequence[str] | None = None,
                   folds: int = 5, seeds: int = 3, resamples: int = 200, seed: int = 0,
                   test_only: bool = True, permutations: int = 0) -> dict[str, Any]:
    """Attribute-inference AUCs of a run's arms beside real histories and the null.

    Raises:
        ValueError: No watches in the run, an unknown arm, or too few users.
    """
    sim, start, profiled = simulated_watches(run_dir)
    if not sim:
        raise ValueError(f"{run_dir}: the trace has no watches to attack")
    chosen = list(arms) if arms else sorted(sim)
    for a in chosen:
        if a not in sim:
            raise ValueError(f"--arms: no arm {a!r} with watches in {run_dir} "
                             f"({', '.join(sorted(sim))})")
    cfg = (start.get("config") or {}).get("dataset") or {}
    history, future = split_interactions(dataset.interactions,
                                         float(cfg.get("history_fraction", 0.8)),
                                         cfg.get("split", "global"))
    index = {u: k for k, u in enumerate(dataset.user_ids)}
    cat = dataset.catalog.index
    # Every user of the run (a user who watched nothing in an arm has an empty row there:
    # it reveals nothing), so every source is attacked on the same users.
    users = sorted(set(profiled) | {u for a in sim for u in sim[a]},
                   key=lambda u: index.get(u, -1))
    users = [u for u in users if u in index and (not test_only or user_split(u) == "test")]
    fut = {u: set() for u in users}  # type: dict[str, set[int]]
    hist = {u: set() for u in users}  # type: dict[str, set[int]]
    want = {index[u]: u for u in users}
    for src, dst in ((future, fut), (history, hist)):
        for uu, ii in zip(src.user.tolist(), src.item.tolist(), strict=True):
            if uu in want:
                dst[want[uu]].add(ii)
    users = [u for u in users if hist[u]]
    if len(users) < 2 * folds:
        raise ValueError(f"{run_dir}: {len(users)} test users with simulated watches and "
                         f"a history; the attack needs at least {2 * folds}")
    attrs = [dataset.user_attrs[index[u]] if dataset.user_attrs else {} for u in users]
    n_items = dataset.n_items
    pop = np.bincount(history.item, minlength=n_items).astype(np.float64) + 1.0
    rng = np.random.default_rng([seed, 97])
    sources: dict[str, sp.csr_matrix] = {
        f"simulated:{a}": _matrix([{cat[i] for i in sim[a].get(u, ()) if i in cat} for u in users],
                                  n_items) for a in chosen}
    sources["real:history"] = _matrix([hist[u] for u in users], n_items)
    sizes = [len(sim[chosen[0]].get(u, ())) for u in users]
    sources["null:random_taste"] = _matrix(
        [set(rng.choice(n_items, size=min(k, n_items), replace=False, p=pop / pop.sum())
             .tolist()) for k in sizes], n_items)
    out: dict[str, Any] = {"run": str(run_dir), "users": len(users), "folds": folds,
                           "seeds": seeds, "reported_on": "test users" if test_only
                           else "all users", "attributes": {}}
    for attr in ATTACKED:
        labels = _labels(attr, attrs)
        ok = np.array([lb is not None for lb in labels])
        if ok.sum() < 2 * folds:
            out["attributes"][attr] = {"note": "too few users with this attribute"}
            continue
        lab = [str(lb) for lb in labels if lb is not None]
        res = {name: attack_auc(x[ok], lab, folds=folds, seeds=seeds, resamples=resamples,
                                seed=seed, permutations=permutations)
               for name, x in sources.items()}
        # Real future interactions exist only for users active after the cutoff (few
        # in MovieLens 100K under the global split): reported on that subset, if any.
        has = np.array([bool(fut[u]) for u in users]) & ok
        lab_f = [str(lb) for lb, h in zip(labels, has, strict=True) if h]
        res["real:future"] = (
            attack_auc(_matrix([fut[u] for u, h in zip(users, has, strict=True) if h],
                               n_items), lab_f, folds=folds, seeds=seeds,
                       resamples=resamples, seed=seed)
            if has.sum() >= 2 * folds else {"auc": None, "users": int(has.sum()),
                                            "note": "too few users with a real future"})
        out["attributes"][attr] = res
    return out
