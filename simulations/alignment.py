"""Fidelity of simulated users against the real ones (Agent4Rec's taste alignment).

Taste alignment: each sampled user's profile is built from the earlier part of their
history only. The simulator is shown held-out items the user really rated >= 4 mixed with
items the user never rated, at 1:m ratios, and picks what it would watch; a pick of a
held-out liked item is a true positive. Rating fidelity: the simulator rates the user's
held-out items and its histogram is compared with the real one (1-Wasserstein, in stars).
"""

from __future__ import annotations

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
from agents.seeding import user_rng
from tools.dataset import Dataset, Interactions, temporal_split
from tools.item_space import item_embeddings

__all__ = [
    "AlignmentSetup",
    "evaluate_alignment",
    "prepare_alignment",
    "rating_fidelity",
    "run_alignment",
]

Progress = Callable[[str, int], Callable[[], None]]


@dataclass(frozen=True, eq=False)
class AlignmentSetup:
    dataset: Dataset
    history: Interactions
    future: Interactions
    world: World
    profiles: list[UserProfile]
    users: list[int]


def prepare_alignment(dataset: Dataset, n_users: int, seed: int,
                      history_fraction: float = 0.8) -> AlignmentSetup:
    """Split, build the world and profiles from history, sample users with liked future."""
    history, future = temporal_split(dataset.interactions, history_fraction)
    emb = item_embeddings(dataset, history, seed=seed)
    ds_hist = dataset.with_interactions(history)
    world = World(dataset.catalog, emb, ds_hist.item_mean_rating, ds_hist.item_popularity,
                  float(history.rating.mean()) if len(history) else 3.5)
    profiles = build_profiles(dataset, history, emb)
    liked_future = np.unique(future.user[future.rating >= 4])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 17]))
    n = min(n_users, len(liked_future))
    users = sorted(int(u) for u in rng.choice(liked_future, size=n, replace=False))
    return AlignmentSetup(dataset, history, future, world, profiles, users)


def _scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    total = tp + fp + fn + tn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / total if total else 0.0, "precision": precision,
            "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def evaluate_alignment(
    setup: AlignmentSetup,
    brain: Brain,
    *,
    seed: int,
    ratios: Sequence[int] = (1, 2, 3, 9),
    positives: int = 4,
    on_user: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Accuracy, precision, recall and F1 of watch picks per 1:m ratio."""
    ds = setup.dataset
    n_items = ds.n_items
    rated = [set() for _ in range(ds.n_users)]  # type: list[set[int]]
    for inter in (setup.history, setup.future):
        for u, i in zip(inter.user.tolist(), inter.item.tolist(), strict=True):
            rated[u].add(i)
    fut = setup.future
    out: dict[str, Any] = {}
    failures = 0
    for m in ratios:
        tp = fp = fn = tn = 0
        for u in setup.users:
            rng = np.random.default_rng(np.random.SeedSequence([seed, u, m, 19]))
            liked = np.unique(fut.item[(fut.user == u) & (fut.rating >= 4)])
            pos = rng.choice(liked, size=min(positives, len(liked)), replace=False)
            pool = np.setdiff1d(np.arange(n_items), np.fromiter(rated[u], np.int64))
            neg = rng.choice(pool, size=min(m * len(pos), len(pool)), replace=False)
            items = rng.permutation(np.concatenate([pos, neg])).astype(int)
            truth = set(pos.tolist())
            obs = PageObservation(setup.profiles[u], 0, 1, tuple(items.tolist()), ())
            try:
                decision = brain.decide_page(obs, user_rng(seed, u, m, 1))
            except DecisionFailure:
                failures += 1
                continue
            for d in decision.items:
                is_pos = d.item in truth
                if d.watch and is_pos:
                    tp += 1
                elif d.watch:
                    fp += 1
                elif is_pos:
                    fn += 1
                else:
                    tn += 1
            on_user()
        out[f"1:{m}"] = {k: (round(v, 4) if isinstance(v, float) else v)
                         for k, v in _scores(tp, fp, fn, tn).items()}
    return {"ratios": out, "failures": failures}


def rating_fidelity(setup: AlignmentSetup, brain: Brain, *, seed: int,
                    per_user: int = 10,
                    on_user: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Simulated vs real ratings of the same users' held-out items."""
    fut = setup.future
    sim: list[int] = []
    real: list[float] = []
    failures = 0
    for u in setup.users:
        mask = fut.user == u
        items, ratings = fut.item[mask], fut.rating[mask]
        rng = np.random.default_rng(np.random.SeedSequence([seed, u, 23]))
        pick = rng.choice(len(items), size=min(per_user, len(items)), replace=False)
        try:
            got = brain.rate_items(setup.profiles[u], tuple(int(i) for i in items[pick]),
                                   user_rng(seed, u, 0, 2))
        except DecisionFailure:
            failures += 1
            continue
        sim.extend(got)
        real.extend(float(r) for r in ratings[pick])
        on_user()

    def hist(xs: Sequence[float]) -> list[float]:
        c = np.bincount(np.clip(np.rint(xs), 1, 5).astype(int), minlength=6)[1:]
        return [round(float(v), 4) for v in c / max(c.sum(), 1)]

    return {
        "wasserstein": round(float(wasserstein_distance(sim, real)), 4) if sim else None,
        "simulated_hist": hist(sim), "real_hist": hist(real),
        "simulated_mean": round(float(np.mean(sim)), 4) if sim else None,
        "real_mean": round(float(np.mean(real)), 4) if real else None,
        "n": len(sim), "failures": failures,
    }


def run_alignment(
    data: str | Path,
    *,
    users: int = 200,
    seed: int = 0,
    brain: str = "utility",
    llm: str | None = None,
    role: str | Path | None = None,
    ratios: Sequence[int] = (1, 2, 3, 9),
    positives: int = 4,
    out: str | Path | None = None,
    replay: str | None = None,
    progress: Progress = lambda name, total: lambda: None,
) -> dict[str, Any]:
    """Both fidelity checks for one brain, as ``recarena eval alignment`` reports them.

    Args:
        data: A MovieLens folder (atomic or GroupLens layout).
        brain: ``utility`` or ``llm``; ``llm`` defaults to the ``local`` model.
        llm: ``--llm`` spec for the llm brain.
        role: A role file; default the shipped role for the brain.
        out: Folder for the LLM cache (record), so the evaluation can be replayed.
        replay: A folder or cache to answer every LLM call from.
        progress: ``(task name, total) -> advance`` for progress bars.
    """
    from agents.setup import make_brain, make_client, parse_llm_flag
    from scenarios.loader import load_role
    from tools.dataset import load_dataset

    if users < 1:
        raise ValueError("eval alignment: --users must be at least 1")
    if not ratios or min(ratios) < 1:
        raise ValueError("eval alignment: --ratios must be positive integers")
    roles = Path(__file__).resolve().parents[1] / "scenarios" / "roles"
    role_cfg = load_role(role or roles / ("llm_user.yaml" if brain == "llm"
                                          else "utility_user.yaml"))
    if role_cfg.brain.kind != brain:
        raise ValueError(f"eval alignment: role {role_cfg.name!r} has brain "
                         f"{role_cfg.brain.kind!r}, not {brain!r}")
    setup = prepare_alignment(load_dataset(data), users, seed)
    client = None
    llm_cfg = parse_llm_flag(llm or "local", None) if brain == "llm" else None
    if llm_cfg is not None:
        folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="recarena-align-"))
        folder.mkdir(parents=True, exist_ok=True)
        client = make_client(llm_cfg, folder, replay_from=replay, seed=seed,
                             on_call=lambda rec: None)
    simulator = make_brain(role_cfg, setup.world, client=client, max_pages=1,
                           backend=llm_cfg.backend if llm_cfg else None)
    n = len(setup.users)
    try:
        taste = evaluate_alignment(setup, simulator, seed=seed, ratios=ratios,
                                   positives=positives,
                                   on_user=progress("taste alignment", n * len(ratios)))
        ratings = rating_fidelity(setup, simulator, seed=seed,
                                  on_user=progress("rating fidelity", n))
    finally:
        if client is not None and client.cache is not None:
            client.cache.close()
    res: dict[str, Any] = {
        "dataset": setup.dataset.name, "users": n, "seed": seed, "brain": brain,
        "llm": f"{llm_cfg.backend}:{llm_cfg.model}" if llm_cfg else None,
        "taste_alignment": taste, "rating_fidelity": ratings,
        "agent4rec_reported_1to1": {"accuracy": 0.69, "f1": 0.70},
    }
    if client is not None:
        res["llm_usage"] = {"calls": len(client.records),
                            "input_tokens": client.usage.total.input_tokens,
                            "output_tokens": client.usage.total.output_tokens}
    return res
