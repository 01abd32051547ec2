"""Rating fidelity: the simulator rates held-out items the user really rated.

RMSE and MAE against the real ratings beside user-mean, item-mean and bias-model
predictions (the bias model's regularisation fitted on tuning users), and the
1-Wasserstein distance between the star histograms beside the user's own history ratings
resampled. The brain is read as its stars (what a simulated user gives) and, where the
brain has one, as its expected rating before noise and rounding (``brain_expected``,
comparable with the unrounded bias model; ``bias_stars`` is the bias model rounded,
comparable with the brain's stars). Every model of a user comes from the history of that
user's origin. Figures are means with t-intervals over seeds (each seed draws other
held-out items).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance

from agents.brains.base import Brain, DecisionFailure
from simulations.analysis.stats import interval
from simulations.eval.alignment_setup import AlignmentSetup
from simulations.eval.baselines import BiasModel, fit_bias_model, user_means
from simulations.run.sampling import keyed_rng

__all__ = ["BIAS_GRID", "fit_bias", "rating_one_seed", "rating_tasks", "summarise_ratings"]

# Regularisation grid of the bias-model baseline (fitted on tuning users).
BIAS_GRID = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0)


def rating_tasks(setup: AlignmentSetup, users: Sequence[int], per_user: int,
                 seed: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Per user: up to ``per_user`` held-out (item, rating) pairs, drawn by seed."""
    fut = setup.future
    out = []
    for u in users:
        mask = fut.user == u
        items, ratings = fut.item[mask], fut.rating[mask]
        pick = keyed_rng(seed, u, 23).choice(len(items), size=min(per_user, len(items)),
                                             replace=False)
        out.append((int(u), items[pick].astype(np.int64), ratings[pick].astype(np.float64)))
    return out


def fit_bias(setups: Sequence[AlignmentSetup], per_user: int,
             seed: int) -> tuple[float, float]:
    """The bias model's regularisation with the lowest RMSE on tuning users (pooled over
    origins, each user predicted by the model of its origin)."""
    best = (np.inf, 10.0, 25.0)
    tasks = [(s, rating_tasks(s, s.tuning, per_user, seed)) for s in setups]
    if not any(t for _, t in tasks):
        return 10.0, 25.0
    for ru in BIAS_GRID:
        for ri in BIAS_GRID:
            err: list[np.ndarray] = []
            for s, ts in tasks:
                if not ts:
                    continue
                ds = s.dataset
                model = fit_bias_model(s.history, ds.n_users, ds.n_items, ru, ri)
                err.extend(model.predict(np.full(len(i), u), i) - r for u, i, r in ts)
            rmse = float(np.sqrt(np.mean(np.concatenate(err) ** 2)))
            best = min(best, (rmse, ru, ri))
    return best[1], best[2]


def _stars(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 1, 5)


def rating_one_seed(
    setups: Sequence[AlignmentSetup], brains: Sequence[Brain] | None,
    users: Sequence[Sequence[int]], biases: Sequence[BiasModel], *, seed: int, per_user: int,
    on_user: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Every rating model's predictions for one seed's held-out draws, pooled."""
    preds: dict[str, list[np.ndarray]] = {}
    reals: list[np.ndarray] = []
    failures = 0
    for k, setup in enumerate(setups):
        ds, hist = setup.dataset, setup.history
        umean = user_means(hist, ds.n_users)
        imean = setup.world.item_mean.astype(np.float64)
        for u, items, real in rating_tasks(setup, users[k], per_user, seed):
            on_user()
            if brains is not None:
                brain = brains[k]
                try:
                    sim = np.asarray(brain.rate_items(setup.profiles[u],
                                                      tuple(int(i) for i in items),
                                                      keyed_rng(seed, u, 0, 2)), np.float64)
                except DecisionFailure:
                    failures += 1
                    continue
                preds.setdefault("brain", []).append(sim)
                expected = getattr(brain, "expected_rating", None)
                if expected is not None:
                    preds.setdefault("brain_expected", []).append(np.array(
                        [expected(setup.profiles[u], int(i)) for i in items]))
            reals.append(real)
            own = hist.rating[hist.user == u].astype(np.float64)
            preds.setdefault("history_resample", []).append(
                keyed_rng(seed, u, 29).choice(own, size=len(items)) if own.size
                else np.full(len(items), umean[u]))
            preds.setdefault("user_mean", []).append(np.full(len(items), umean[u]))
            preds.setdefault("item_mean", []).append(imean[items])
            b = biases[k].predict(np.full(len(items), u), items)
            preds.setdefault("bias", []).append(b)
            preds.setdefault("bias_stars", []).append(_stars(b))
    return {"real": np.concatenate(reals) if reals else np.zeros(0),
            "preds": {n: np.concatenate(c) for n, c in preds.items()}, "failures": failures}


def _hist(xs: np.ndarray) -> list[float]:
    c = np.bincount(_stars(xs).astype(int), minlength=6)[1:]
    return [round(float(v), 4) for v in c / max(c.sum(), 1)]


def summarise_ratings(runs: Sequence[dict[str, Any]],
                      reg: tuple[float, float]) -> dict[str, Any]:
    """RMSE, MAE (and W1 for star-valued models) per model, over seeds."""
    rows: dict[str, list[dict[str, float]]] = {}
    for r in runs:
        real = r["real"]
        if not real.size:
            continue
        for name, pred in r["preds"].items():
            row = {"rmse": float(np.sqrt(np.mean((pred - real) ** 2))),
                   "mae": float(np.mean(np.abs(pred - real)))}
            if name in ("brain", "history_resample", "bias_stars"):
                row["w1"] = float(wasserstein_distance(pred, real))
            rows.setdefault(name, []).append(row)
    models: dict[str, Any] = {n: {k: interval([x[k] for x in v]) for k in v[0]}
                              for n, v in rows.items()}
    if "bias" in models:
        models["bias"]["regularisation"] = {"user": reg[0], "item": reg[1]}
    if "brain" in rows and "bias" in rows:
        models["brain_minus_bias_rmse"] = interval(
            [a["rmse"] - b["rmse"] for a, b in zip(rows["brain"], rows["bias"], strict=True)])
    if "brain_expected" in rows and "bias" in rows:
        models["brain_expected_minus_bias_rmse"] = interval(
            [a["rmse"] - b["rmse"]
             for a, b in zip(rows["brain_expected"], rows["bias"], strict=True)])
    first = runs[0]
    return {"models": models, "failures": int(sum(r["failures"] for r in runs)),
            "n_per_seed": int(first["real"].size),
            "real_hist": _hist(first["real"]),
            "simulated_hist": _hist(first["preds"]["brain"]) if "brain" in first["preds"]
            else None}
