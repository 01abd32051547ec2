"""Recommender-ranking validity: do simulated users prefer what real users would?

A simulator is useful for comparing recommenders only if the order it puts them in is
the order real users would. This runs a feed scenario, built here and run through the
public ``simulations.run.runner.prepare`` and ``run``, with one arm per recommender on the
same seeded users, and compares each simulated metric (per-user watch rate, interview
satisfaction, exit page) with the held-out accuracy of the same recommenders for the same
users: HR@10 and NDCG@10 of each model's top 10 (trained on the history the simulation
uses, history items excluded) against the user's held-out interactions. Reported: the
per-arm means, Spearman's rank correlation of each simulated metric with each held-out
metric across recommenders, and paired 95% intervals between neighbours in held-out order.
Only test users (simulations/run/sampling.py) browse; the world, profiles and recommenders are
built from everyone's history exactly as in a normal run. The split is leak-free by
default (one global time cutoff, tools.dataset.global_split): history, and so every model,
ends before any held-out rating.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from scenarios.loader import LoadedScenario, load_role, shipped_role
from scenarios.schema import RoleConfig, Scenario
from simulations.analysis.stats import interval, paired_interval
from simulations.eval.validity_stats import learned_arms, rank_stats
from simulations.run.sampling import user_split
from tools.recommenders.plugin import arm_name

__all__ = [
    "DEFAULT_MODELS",
    "HELDOUT",
    "SIM_METRICS",
    "check_models",
    "heldout_accuracy",
    "run_validity",
    "simulate_feed",
    "simulate_values",
    "test_population",
    "utility_role",
    "validity_scenario",
]

DEFAULT_MODELS = ("random", "pop", "itemknn", "ease", "als", "bpr")
MODEL_PARAMS: dict[str, dict[str, float]] = {"ease": {"l2": 500.0}}
SIM_METRICS = ("watch_rate", "satisfaction", "exit_page")
HELDOUT = ("hr@10", "ndcg@10")
Progress = Callable[[str, int], Callable[[], None]]


def validity_scenario(
    data: str | Path, role: RoleConfig, *, seed: int, models: Sequence[str] = DEFAULT_MODELS,
    users: int | None = None, items_per_page: int = 4, max_pages: int = 5,
    history_fraction: float = 0.8, split: str = "global",
) -> LoadedScenario:
    """A one-round feed scenario with one arm per model (validated like a file)."""
    scn = Scenario.model_validate({
        "kind": "scenario", "name": "validity", "seed": seed,
        "dataset": {"source": "files", "path": str(data), "history_fraction": history_fraction,
                    "split": split},
        "population": {"size": users, "sampling": "random", "role": role},
        "recommenders": [{"name": arm_name(m), "model": m, "params": MODEL_PARAMS.get(m, {})}
                         for m in models],
        "environment": {"kind": "feed", "items_per_page": items_per_page,
                        "max_pages": max_pages, "rounds": 1},
    })
    return LoadedScenario(scn, role, Path(f"<validity seed {seed}>"), None)


def simulate_feed(
    prep: Any, out: Path, on_session_end: Callable[[int], None] = lambda n: None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Run a prepared scenario; per arm and user id: watch rate, satisfaction, exit page."""
    from simulations.record.trace import read_trace
    from simulations.run.runner import run

    result = run(prep, out, on_session_end=on_session_end, argv=["recarena", "eval", "validity"])
    per: dict[str, dict[str, dict[str, float]]] = {}
    for ev in read_trace(result.run_dir):
        t = ev.get("type")
        if t == "session_end" and ev["shown"] > 0:
            row = per.setdefault(ev["arm"], {}).setdefault(ev["user"], {})
            row["watch_rate"] = ev["watched"] / ev["shown"]
            row["exit_page"] = float(ev["pages"])
        elif t == "interview":
            per.setdefault(ev["arm"], {}).setdefault(ev["user"], {})["satisfaction"] = float(
                ev["satisfaction"])
    return per


def heldout_accuracy(prep: Any, models: Sequence[str], users: Sequence[int],
                     k: int = 10) -> dict[str, dict[str, np.ndarray]]:
    """HR@k and NDCG@k per model for ``users`` (indices), against their held-out items."""
    from tools.recommenders import make_recommender

    ds = prep.dataset
    hist = prep.history.matrix(ds.n_users, ds.n_items, binary=True)
    fut = prep.future.matrix(ds.n_users, ds.n_items, binary=True)
    u = np.asarray(users, dtype=np.int64)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    n_rel = np.asarray(fut[u].sum(axis=1)).ravel().astype(int)
    idcg = np.array([disc[:min(n, k)].sum() for n in n_rel])
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in models:
        rec = make_recommender(name, seed=prep.scenario.seed, **MODEL_PARAMS.get(name, {}))
        rec.fit(prep.history.matrix(ds.n_users, ds.n_items, binary=not rec.uses_ratings))
        top = rec.recommend(u, k, hist[u])
        hits = np.zeros(top.shape)
        for row, (uu, items) in enumerate(zip(u, top, strict=True)):
            ok = items >= 0
            hits[row, ok] = fut[uu, items[ok]].toarray().ravel()
        out[name] = {
            f"hr@{k}": (hits.sum(axis=1) > 0).astype(np.float64),
            f"ndcg@{k}": np.where(idcg > 0, (hits * disc).sum(axis=1) / np.maximum(idcg, 1e-12),
                                  0.0),
        }
    return out


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return round(float(spearmanr(x, y).statistic), 4)


def test_population(full: Any, seed: int, users: int | None, which: str = "test",
                    heldout: bool = True) -> list[int]:
    """The users of split ``which`` (tuning, development, test) in a prepared scenario
    (with ``heldout``: only those with held-out interactions; a seeded sample of
    ``users``).

    Raises:
        ValueError: ``users`` is more than the split holds (never silently fewer).
    """
    ids = full.dataset.user_ids
    # Held-out accuracy needs held-out items: under a global time cutoff many users have
    # none (they stopped rating before it), and they would count as misses for every arm.
    has_future = (np.bincount(full.future.user, minlength=full.dataset.n_users) > 0
                  if heldout else np.ones(full.dataset.n_users, dtype=bool))
    pool = [u for u in full.population if user_split(ids[u]) == which and has_future[u]]
    if users is not None and users > len(pool):
        raise ValueError(f"eval validity: --users {users}: only {len(pool)} {which} users")
    if users is not None and users < len(pool):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 47]))
        pool = sorted(int(u) for u in rng.choice(pool, size=users, replace=False))
    return pool


def check_models(models: Sequence[str]) -> None:
    """At least three distinct models, each built in or a plug-in that imports (one-line
    error otherwise, before any work)."""
    from tools.recommenders import check_model

    if len(models) < 3 or len(set(models)) != len(models):
        raise ValueError("eval validity: --models needs at least three distinct models")
    for m in models:
        try:
            check_model(m)
        except ValueError as e:
            raise ValueError(f"eval validity: --models: {e}") from None


def utility_role(role: str | Path | RoleConfig | None) -> RoleConfig:
    """The role to simulate with (default: the shipped utility role); utility only."""
    if role is None:
        role = shipped_role("utility_user")
    role_cfg = role if isinstance(role, RoleConfig) else load_role(role)
    if role_cfg.brain.kind != "utility":
        raise ValueError("eval validity: only utility roles (an LLM run of six arms over "
                         "hundreds of users is out of a few minutes' budget)")
    return role_cfg


def simulate_values(
    full: Any, users: Sequence[int], out: Path | None = None,
    on_session_end: Callable[[int], None] = lambda n: None,
) -> tuple[Any, dict[str, dict[str, dict[str, float]]]]:
    """Simulate ``users`` (indices) in a prepared validity scenario."""
    prep = replace(full, population=list(users))
    with tempfile.TemporaryDirectory(prefix="recarena-validity-") as tmp:
        per = simulate_feed(prep, out or Path(tmp) / "run", on_session_end=on_session_end)
    models = [r.model for r in prep.scenario.recommenders]
    return prep, {m: per.get(arm_name(m), {}) for m in models}  # arms named after models


def run_validity(
    data: str | Path,
    *,
    seed: int = 0,
    users: int | None = None,
    models: Sequence[str] = DEFAULT_MODELS,
    role: str | Path | RoleConfig | None = None,
    taste: str | None = None,
    out: str | Path | None = None,
    split: str = "global",
    progress: Progress = lambda name, total: lambda: None,
) -> dict[str, Any]:
    """Simulate every model on the same users; compare with held-out accuracy.

    Args:
        data: A MovieLens folder.
        seed: The scenario seed.
        users: Test users to simulate (None: all test users with history and a held-out
            rating); tuning and development users never run.
        models: Recommenders to compare (at least three).
        role: A role file or config; default the shipped utility role.
        taste: A taste family to simulate with (its calibration applied), default the
            role's own.
        out: Run folder to keep (default: a temporary one, removed afterwards).
        split: ``global`` (leak-free, one time cutoff) or ``per_user`` (the leaky split).
    """
    check_models(models)
    if users is not None and users < 1:
        raise ValueError("eval validity: --users must be at least 1")
    role_cfg = utility_role(role)
    if taste is not None:
        from simulations.run.taste_roles import role_for_family

        role_cfg = role_for_family(role_cfg, taste)
    from simulations.run.runner import prepare

    loaded = validity_scenario(data, role_cfg, seed=seed, models=models, split=split)
    full = prepare(loaded, data=str(data))
    ids = full.dataset.user_ids
    # Only test users browse: tuning and development users never enter a reported figure.
    test = test_population(full, seed, users)
    step = progress("simulated sessions", len(test) * len(models))

    def ended(n: int) -> None:
        for _ in range(n):
            step()

    prep, per = simulate_values(full, test, Path(out) if out else None, ended)
    sim_users = [u for u in test if all(ids[u] in per.get(m, {}) for m in models)]
    acc = heldout_accuracy(prep, models, sim_users)
    values: dict[str, dict[str, np.ndarray]] = {}
    for m in models:
        rows = [per[m][ids[u]] for u in sim_users]
        values[m] = {k: np.array([r.get(k, np.nan) for r in rows]) for k in SIM_METRICS}
        values[m].update(acc[m])
    arms = {m: {k: interval(v[~np.isnan(v)].tolist()) for k, v in values[m].items()}
            for m in models}
    means = {m: {k: arms[m][k]["mean"] for k in arms[m]} for m in models}
    corr = {s: {h: _spearman([means[m][s] for m in models], [means[m][h] for m in models])
                for h in HELDOUT} for s in SIM_METRICS}
    order = sorted(models, key=lambda m: -means[m]["hr@10"])
    pairs = []
    for a, b in itertools.pairwise(order):
        row: dict[str, Any] = {"better": a, "worse": b}
        for k in (*SIM_METRICS, *HELDOUT):
            va, vb = values[a][k], values[b][k]
            ok = ~(np.isnan(va) | np.isnan(vb))
            row[k] = paired_interval(va[ok].tolist(), vb[ok].tolist())
        pairs.append(row)
    learned = learned_arms(models)
    stats = (rank_stats({m: values[m]["watch_rate"] for m in learned},
                        {m: values[m]["hr@10"] for m in learned}, learned, seed=seed)
             if len(learned) >= 3 else None)
    return {
        "dataset": prep.dataset.name, "seed": seed, "users": len(sim_users),
        "test_users_available": len(test_population(full, seed, None)),
        "models": list(models), "taste": role_cfg.brain.taste.family,
        "split": split, "role": role_cfg.name, "arms": arms, "spearman": corr,
        "heldout_order": order, "neighbours": pairs, "learned": stats,
        "agent4rec_reported": {"watch_rate": 0.5, "exit_page": 3.2, "satisfaction": 3.9},
    }
