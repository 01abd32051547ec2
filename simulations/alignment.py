"""Fidelity of simulated users against the real ones, beside baselines.

Taste alignment (Agent4Rec's protocol): each user's profile is built from the earlier part
of their history only. The simulator is shown held-out items the user really rated >= 4
mixed 1:m with items the user never rated, and picks what it would watch. Negatives are
drawn ``uniform`` (Agent4Rec's) or ``popularity-matched`` (see simulations/sampling.py);
with uniform negatives popularity alone separates most pairs. Reported per ratio:
threshold-free AUC of the brain's scores (mean over users of each user's AUC) and
accuracy, precision, recall and F1 of its actual decisions.

Baselines on the same users and items: random, popularity only, item mean rating only and
EASE on the same history; their decision thresholds are fitted on tuning users only.

Rating fidelity: the simulator rates held-out items; RMSE and MAE against the real
ratings beside user-mean, item-mean and bias-model predictions, and the 1-Wasserstein
distance between the rating histograms beside the user's own history ratings resampled.

Users are split once by id into tuning and test users (simulations/sampling.py); every
figure is on test users, as the mean and a 95% t-interval over disjoint test samples.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance

from agents.brains.base import Brain, DecisionFailure, PageObservation
from agents.brains.utility import World
from agents.profile import UserProfile, build_profiles
from simulations.baselines import (
    TASTE_BASELINES,
    fit_bias_model,
    fit_threshold,
    taste_scorers,
    user_means,
)
from simulations.sampling import (
    NEGATIVE_SAMPLERS,
    NegativeSampler,
    disjoint_samples,
    keyed_rng,
    sample_negatives,
    users_by_split,
)
from simulations.stats import auc, classification, interval
from tools.dataset import Dataset, Interactions, SplitKind, split_interactions
from tools.item_space import item_embeddings

__all__ = [
    "AlignmentSetup",
    "Task",
    "evaluate_ratings",
    "evaluate_taste",
    "make_tasks",
    "prepare_alignment",
    "run_alignment",
]

Progress = Callable[[str, int], Callable[[], None]]
METRICS = ("auc", "accuracy", "precision", "recall", "f1")
# Regularisation grid of the bias-model baseline (fitted on tuning users).
BIAS_GRID = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0)


@dataclass(frozen=True, eq=False)
class AlignmentSetup:
    """History/held-out split, the world and profiles built from history, and the users."""

    dataset: Dataset
    history: Interactions
    future: Interactions
    world: World
    profiles: list[UserProfile]
    tuning: list[int]  # users with history and a liked held-out item, in the tuning split
    test: list[int]  # the same, in the test split
    development: list[int] = dataclasses.field(default_factory=list)  # and development

    @property
    def available(self) -> np.ndarray:
        """Items rated by anyone in history: the only items negatives are drawn from."""
        return np.flatnonzero(self.world.popularity > 0)


def prepare_alignment(dataset: Dataset, seed: int = 0, history_fraction: float = 0.8,
                      split: SplitKind = "global") -> AlignmentSetup:
    """Split the ratings in time (``split``: tools.dataset.split_interactions); the item
    space, popularity, item means and profiles come from history only."""
    history, future = split_interactions(dataset.interactions, history_fraction, split)
    emb = item_embeddings(dataset, history, seed=seed)
    ds_hist = dataset.with_interactions(history)
    world = World(dataset.catalog, emb, ds_hist.item_mean_rating, ds_hist.item_popularity,
                  float(history.rating.mean()) if len(history) else 3.5)
    profiles = build_profiles(dataset, history, emb)
    has_hist = np.bincount(history.user, minlength=dataset.n_users) > 0
    liked = np.zeros(dataset.n_users, dtype=bool)
    liked[future.user[future.rating >= 4]] = True
    by = users_by_split(dataset.user_ids)
    ok = has_hist & liked
    return AlignmentSetup(dataset, history, future, world, profiles,
                          [u for u in by["tuning"] if ok[u]], [u for u in by["test"] if ok[u]],
                          [u for u in by["development"] if ok[u]])


@dataclass(frozen=True)
class Task:
    """One user's positives and, per positive, an ordered row of negatives."""

    user: int
    positives: np.ndarray
    negatives: np.ndarray  # (len(positives), max ratio)

    def page(self, m: int, seed: int) -> tuple[tuple[int, ...], frozenset[int]]:
        """The items shown at ratio 1:m (shuffled) and the positives among them."""
        items = np.concatenate([self.positives, self.negatives[:, :m].ravel()])
        items = keyed_rng(seed, self.user, m, 7).permutation(items)
        return tuple(int(i) for i in items), frozenset(int(i) for i in self.positives)


def make_tasks(setup: AlignmentSetup, users: Sequence[int], sampler: NegativeSampler,
               max_ratio: int, positives: int, seed: int) -> list[Task]:
    """Positives (held-out items rated >= 4) and negatives for each user."""
    fut, hist = setup.future, setup.history
    n_items = setup.dataset.n_items
    code = NEGATIVE_SAMPLERS.index(sampler)
    tasks = []
    for u in users:
        rng = keyed_rng(seed, u, 19, code)
        liked = np.unique(fut.item[(fut.user == u) & (fut.rating >= 4)])
        pos = rng.choice(liked, size=min(positives, len(liked)), replace=False)
        rated = np.union1d(hist.item[hist.user == u], fut.item[fut.user == u])
        pool = np.setdiff1d(setup.available, rated)
        neg = sample_negatives(sampler, rng, pos, pool, setup.world.popularity, max_ratio)
        tasks.append(Task(int(u), pos.astype(np.int64), neg))
    return tasks


class _Tally:
    """Confusion counts and per-user AUCs of one scorer at one ratio."""

    def __init__(self) -> None:
        self.tp = self.fp = self.fn = self.tn = 0
        self.aucs: list[float] = []

    def add(self, items: Sequence[int], truth: frozenset[int], scores: Sequence[float],
            watch: Sequence[bool]) -> None:
        pos = [s for i, s in zip(items, scores, strict=True) if i in truth]
        neg = [s for i, s in zip(items, scores, strict=True) if i not in truth]
        a = auc(pos, neg)
        if a is not None:
            self.aucs.append(a)
        for i, w in zip(items, watch, strict=True):
            is_pos = i in truth
            self.tp += w and is_pos
            self.fp += w and not is_pos
            self.fn += (not w) and is_pos
            self.tn += (not w) and not is_pos

    def result(self) -> dict[str, float]:
        out = {"auc": float(np.mean(self.aucs)) if self.aucs else 0.0}
        out.update(classification(self.tp, self.fp, self.fn, self.tn))
        return out


def _decision_scores(decision: Any) -> tuple[list[float], list[bool]]:
    """Each item's threshold-free score (``inputs['score']``, else the decision itself)."""
    scores, watch = [], []
    for d in decision.items:
        s = d.inputs.get("score")
        scores.append(float(s) if s is not None else float(d.watch))
        watch.append(bool(d.watch))
    return scores, watch


def _fit_thresholds(setup: AlignmentSetup, tuning_tasks: list[Task], ratios: Sequence[int],
                    scorers: dict[str, Callable[[int, np.ndarray], np.ndarray]],
                    seed: int) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {name: {} for name in scorers}
    for m in ratios:
        for name, score in scorers.items():
            s: list[float] = []
            y: list[bool] = []
            for t in tuning_tasks:
                items, truth = t.page(m, seed)
                s.extend(score(t.user, np.asarray(items)).tolist())
                y.extend(i in truth for i in items)
            out[name][m] = fit_threshold(s, y)
    return out


def evaluate_taste(
    setup: AlignmentSetup,
    brain: Brain | None,
    samples: list[list[Task]],
    tuning_tasks: list[Task],
    *,
    seed: int,
    ratios: Sequence[int],
    on_user: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Per ratio and scorer (the brain and the baselines): each metric over samples."""
    scorers = taste_scorers(setup.world, setup.history, setup.dataset.n_users, seed)
    thresholds = _fit_thresholds(setup, tuning_tasks, ratios, scorers, seed)
    names = (["brain"] if brain is not None else []) + list(TASTE_BASELINES)
    per: dict[int, dict[str, list[dict[str, float]]]] = {
        m: {n: [] for n in names} for m in ratios}
    failures = 0
    for tasks in samples:
        for m in ratios:
            tallies = {n: _Tally() for n in names}
            for t in tasks:
                items, truth = t.page(m, seed)
                arr = np.asarray(items)
                for name, score in scorers.items():
                    s = score(t.user, arr)
                    tallies[name].add(items, truth, s.tolist(),
                                      (s > thresholds[name][m]).tolist())
                if brain is not None:
                    obs = PageObservation(setup.profiles[t.user], 0, 1, items, ())
                    try:
                        decision = brain.decide_page(obs, keyed_rng(seed, t.user, m, 1))
                    except DecisionFailure:
                        failures += 1
                    else:
                        tallies["brain"].add(items, truth, *_decision_scores(decision))
                on_user()
            for n in names:
                per[m][n].append(tallies[n].result())
    out: dict[str, Any] = {}
    auc_diff: dict[str, Any] = {}
    for m in ratios:
        out[f"1:{m}"] = {n: {k: interval([r[k] for r in per[m][n]]) for k in METRICS}
                         for n in names}
        if brain is not None:
            # Paired by sample: the brain and each baseline saw the same users and items.
            auc_diff[f"1:{m}"] = {
                n: interval([b["auc"] - x["auc"]
                             for b, x in zip(per[m]["brain"], per[m][n], strict=True)])
                for n in TASTE_BASELINES}
    return {"ratios": out, "brain_auc_minus": auc_diff, "failures": failures,
            "thresholds": {n: {f"1:{m}": round(v, 6) for m, v in th.items()}
                           for n, th in thresholds.items()}}


def _rating_tasks(setup: AlignmentSetup, users: Sequence[int], per_user: int,
                  seed: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    fut = setup.future
    out = []
    for u in users:
        mask = fut.user == u
        items, ratings = fut.item[mask], fut.rating[mask]
        pick = keyed_rng(seed, u, 23).choice(len(items), size=min(per_user, len(items)),
                                        replace=False)
        out.append((int(u), items[pick].astype(np.int64), ratings[pick].astype(np.float64)))
    return out


def _fit_bias(setup: AlignmentSetup, per_user: int, seed: int) -> tuple[float, float]:
    """The bias model's regularisation with the lowest RMSE on tuning users."""
    ds = setup.dataset
    tasks = _rating_tasks(setup, setup.tuning, per_user, seed)
    users = np.concatenate([np.full(len(i), u) for u, i, _ in tasks]) if tasks else None
    if users is None:
        return 10.0, 25.0
    items = np.concatenate([i for _, i, _ in tasks])
    real = np.concatenate([r for _, _, r in tasks])
    best = (np.inf, 10.0, 25.0)
    for ru in BIAS_GRID:
        for ri in BIAS_GRID:
            model = fit_bias_model(setup.history, ds.n_users, ds.n_items, ru, ri)
            rmse = float(np.sqrt(np.mean((model.predict(users, items) - real) ** 2)))
            best = min(best, (rmse, ru, ri))
    return best[1], best[2]


def _stars(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 1, 5)


def evaluate_ratings(setup: AlignmentSetup, brain: Brain | None, samples: list[list[int]],
                     *, seed: int, per_user: int = 10,
                     on_user: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """RMSE, MAE and histogram W1 of simulated ratings, beside the rating baselines."""
    ds = setup.dataset
    reg_user, reg_item = _fit_bias(setup, per_user, seed)
    bias = fit_bias_model(setup.history, ds.n_users, ds.n_items, reg_user, reg_item)
    umean = user_means(setup.history, ds.n_users)
    imean = setup.world.item_mean.astype(np.float64)
    hist = setup.history
    per: dict[str, list[dict[str, float]]] = {}
    failures = 0
    real_all: list[float] = []
    sim_all: list[float] = []

    def add(name: str, pred: np.ndarray, real: np.ndarray, w1: bool = False) -> None:
        row = {"rmse": float(np.sqrt(np.mean((pred - real) ** 2))),
               "mae": float(np.mean(np.abs(pred - real)))}
        if w1:
            row["w1"] = float(wasserstein_distance(pred, real))
        per.setdefault(name, []).append(row)

    for users in samples:
        preds: dict[str, list[np.ndarray]] = {}
        reals: list[np.ndarray] = []
        for u, items, real in _rating_tasks(setup, users, per_user, seed):
            sim = None
            if brain is not None:
                try:
                    sim = np.asarray(brain.rate_items(
                        setup.profiles[u], tuple(int(i) for i in items), keyed_rng(seed, u, 0, 2)),
                        dtype=np.float64)
                except DecisionFailure:
                    failures += 1
                    on_user()
                    continue
            reals.append(real)
            if sim is not None:
                preds.setdefault("brain", []).append(sim)
            own = hist.rating[hist.user == u].astype(np.float64)
            preds.setdefault("history_resample", []).append(
                keyed_rng(seed, u, 29).choice(own, size=len(items)) if own.size
                else np.full(len(items), umean[u]))
            preds.setdefault("user_mean", []).append(np.full(len(items), umean[u]))
            preds.setdefault("item_mean", []).append(imean[items])
            b = bias.predict(np.full(len(items), u), items)
            preds.setdefault("bias", []).append(b)
            preds.setdefault("bias_stars", []).append(_stars(b))
            on_user()
        if not reals:
            continue
        real = np.concatenate(reals)
        real_all.extend(real.tolist())
        for name, chunks in preds.items():
            pred = np.concatenate(chunks)
            add(name, pred, real, w1=name in ("brain", "history_resample", "bias_stars"))
            if name == "brain":
                sim_all.extend(pred.tolist())

    def hist_of(xs: Sequence[float]) -> list[float]:
        c = np.bincount(_stars(np.asarray(xs, dtype=np.float64)).astype(int), minlength=6)[1:]
        return [round(float(v), 4) for v in c / max(c.sum(), 1)]

    out: dict[str, Any] = {
        name: {k: interval([r[k] for r in rows]) for k in rows[0]}
        for name, rows in per.items()
    }
    out["bias"]["regularisation"] = {"user": reg_user, "item": reg_item}
    return {"models": out, "failures": failures, "n": len(real_all),
            "real_hist": hist_of(real_all),
            "simulated_hist": hist_of(sim_all) if sim_all else None}


def _popularity_check(setup: AlignmentSetup, samples: list[list[Task]]) -> dict[str, float]:
    pop = setup.world.popularity
    pos = np.concatenate([t.positives for s in samples for t in s])
    neg = np.concatenate([t.negatives[:, 0] for s in samples for t in s])
    return {"median_positive": float(np.median(pop[pos])),
            "median_negative_1to1": float(np.median(pop[neg]))}


def run_alignment(
    data: str | Path,
    *,
    users: int = 100,
    samples: int = 5,
    seed: int = 0,
    negatives: NegativeSampler = "popularity-matched",
    brain: str = "utility",
    llm: str | None = None,
    llm_threads: int | None = None,
    role: str | Path | None = None,
    ratios: Sequence[int] = (1, 3, 9),
    positives: int = 4,
    rating_items: int = 10,
    tuning_users: int = 300,
    out: str | Path | None = None,
    replay: str | None = None,
    progress: Progress = lambda name, total: lambda: None,
) -> dict[str, Any]:
    """Taste alignment and rating fidelity of one brain on test users, beside baselines.

    Args:
        data: A MovieLens folder (atomic or GroupLens layout).
        users: Users per test sample.
        samples: Disjoint test samples; figures are means with 95% intervals over them.
        negatives: ``uniform`` or ``popularity-matched``.
        brain: ``utility``, ``llm`` (defaults to the ``local`` model) or ``none``
            (baselines only).
        llm: ``--llm`` spec for the llm brain.
        llm_threads: CPU threads of the local model (1 is fastest on a busy machine).
        role: A role file; default the shipped role for the brain.
        tuning_users: Tuning users the baselines' thresholds are fitted on.
        out: Folder for the LLM cache (record), so the evaluation can be replayed.
        replay: A folder or cache to answer every LLM call from.
        progress: ``(task name, total) -> advance`` for progress bars.
    """
    from agents.llm import model_identity
    from agents.setup import make_brain, make_client, parse_llm_flag
    from scenarios.loader import load_role
    from tools.dataset import load_dataset

    if users < 1 or samples < 1 or tuning_users < 1:
        raise ValueError("eval alignment: --users, --samples and --tuning-users must be "
                         "at least 1")
    if llm_threads is not None and llm_threads < 1:
        raise ValueError("eval alignment: --llm-threads must be at least 1")
    if positives < 1 or rating_items < 1:
        raise ValueError("eval alignment: --positives and --rating-items must be at least 1")
    if not ratios or min(ratios) < 1:
        raise ValueError("eval alignment: --ratios must be positive integers")
    if negatives not in NEGATIVE_SAMPLERS:
        raise ValueError(f"eval alignment: --negatives must be one of "
                         f"{', '.join(NEGATIVE_SAMPLERS)}")
    if brain not in ("utility", "llm", "none"):
        raise ValueError("eval alignment: --brain must be utility, llm or none")
    role_cfg = None
    if brain != "none":
        roles = Path(__file__).resolve().parents[1] / "scenarios" / "roles"
        role_cfg = load_role(role or roles / ("llm_user.yaml" if brain == "llm"
                                              else "utility_user.yaml"))
        if role_cfg.brain.kind != brain:
            raise ValueError(f"eval alignment: role {role_cfg.name!r} has brain "
                             f"{role_cfg.brain.kind!r}, not {brain!r}")
    setup = prepare_alignment(load_dataset(data), seed)
    groups = disjoint_samples(setup.test, samples, users, seed)
    ratios = sorted(set(ratios))
    tasks = [make_tasks(setup, g, negatives, max(ratios), positives, seed) for g in groups]
    rng = keyed_rng(seed, 43)
    tune = sorted(rng.choice(setup.tuning, size=min(tuning_users, len(setup.tuning)),
                             replace=False).tolist())
    tuning_tasks = make_tasks(setup, tune, negatives, max(ratios), positives, seed)
    client = None
    llm_cfg = parse_llm_flag(llm or "local", None) if brain == "llm" else None
    if llm_cfg is not None and llm_threads is not None:
        llm_cfg = llm_cfg.model_copy(update={"n_threads": llm_threads})
    if llm_cfg is not None:
        folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="recarena-align-"))
        folder.mkdir(parents=True, exist_ok=True)
        client = make_client(llm_cfg, folder, replay_from=replay, seed=seed,
                             on_call=lambda rec: None)
    simulator = None
    if role_cfg is not None:
        simulator = make_brain(role_cfg, setup.world, client=client, max_pages=1,
                               backend=llm_cfg.backend if llm_cfg else None)
    n = sum(len(g) for g in groups)
    try:
        taste = evaluate_taste(setup, simulator, tasks, tuning_tasks, seed=seed,
                               ratios=ratios,
                               on_user=progress("taste alignment", n * len(ratios)))
        ratings = evaluate_ratings(setup, simulator, groups, seed=seed, per_user=rating_items,
                                   on_user=progress("rating fidelity", n))
    finally:
        if client is not None and client.cache is not None:
            client.cache.close()
    res: dict[str, Any] = {
        "dataset": setup.dataset.name, "seed": seed, "brain": brain,
        "llm": f"{llm_cfg.backend}:{model_identity(llm_cfg)}" if llm_cfg else None,
        "negatives": negatives, "samples": len(groups), "users_per_sample": len(groups[0]),
        "split": {"tuning_users": len(setup.tuning), "test_users": len(setup.test),
                  "baseline_thresholds_fitted_on": len(tune)},
        "positives_per_user": positives,
        "popularity": _popularity_check(setup, tasks),
        "taste_alignment": taste, "rating_fidelity": ratings,
        "agent4rec_reported_1to1": {"accuracy": 0.69, "f1": 0.70},
    }
    if client is not None:
        res["llm_usage"] = {"calls": len(client.records),
                            "input_tokens": client.usage.total.input_tokens,
                            "output_tokens": client.usage.total.output_tokens}
    return res
