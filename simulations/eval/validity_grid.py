"""Validity over taste families, seeds and null simulators: ``recarena eval validity --taste``.

For each seed the same test users browse the same arms once per taste family (each with
its calibrated parameters, simulations/run/taste_roles.py) and once per null simulator
(``random``: random-taste users; ``none``: popularity-only users), all through the same
``prepare``/``run`` pipeline. Held-out accuracy is computed once per seed for those users.
Per family and seed: the statistics of simulations/eval/validity_stats.py over the learned arms
(Kendall, Spearman, significant-pair agreement, with bootstrap intervals over users) and
which arm wins; per seed, the robustness of every learned pair across the (non-null)
families (simulations/eval/robust.py) beside whether held-out data separates that pair.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.schema import RoleConfig
from simulations.eval.robust import NOT_SEPARATED, ROBUST, classify
from simulations.eval.validity import (
    DEFAULT_MODELS,
    check_models,
    heldout_accuracy,
    simulate_values,
    test_population,
    utility_role,
    validity_scenario,
)
from simulations.eval.validity_stats import (
    learned_arms,
    rank_stats,
    significant_pairs,
    summarise_seeds,
)
from simulations.run.taste_roles import role_for_family
from tools.memo import memo

__all__ = ["CUTOFFS", "NULLS", "cutoff_quantiles", "run_grid", "seed_result"]

NULLS = ("random", "none")  # random-taste users, popularity-only users
# The global time cutoff's quantile. MovieLens 100K users mostly rate in one burst, so few
# span any cutoff: 49 test users have held-out ratings after the 0.8 quantile, 60 after 0.6
# (chosen from these counts alone, before any simulation; docs/fidelity.md).
HISTORY_FRACTION = 0.6
# Rolling origins pooled by default (as `eval alignment`): a user is evaluated at one of
# CUTOFFS global cutoffs between these quantiles, which lets ~106 test users in instead of
# ~60 at the one 0.6 cutoff (counted before any simulation).
CUTOFFS, FIRST_CUTOFF, LAST_CUTOFF = 5, 0.3, 0.9
Progress = Callable[[str, int], Callable[[], None]]


def _family_result(watch: dict[str, np.ndarray], held: dict[str, np.ndarray],
                   models: Sequence[str], seed: int, resamples: int,
                   held_pairs: list[dict[str, Any]]) -> dict[str, Any]:
    learned = learned_arms(models)
    ok = np.all([~np.isnan(watch[m]) for m in models], axis=0)
    w = {m: watch[m][ok] for m in models}
    h = {m: held[m][ok] for m in models}
    stats = rank_stats({m: w[m] for m in learned}, {m: h[m] for m in learned}, learned,
                       resamples=resamples, seed=seed, pairs=held_pairs)
    sim_pairs = {(p["better"], p["worse"]): p for p in
                 significant_pairs(w, learned, seed=seed, resamples=resamples)}
    verdicts = {}
    for a, b in itertools.combinations(learned, 2):
        p = sim_pairs.get((a, b)) or sim_pairs[(b, a)]
        sign = 1.0 if p["better"] == a else -1.0
        verdicts[f"{a}|{b}"] = (sign * p["diff"], bool(p["significant"]))
    return {"users": int(ok.sum()),
            "watch_rate": {m: round(float(w[m].mean()), 4) for m in models},
            "winner": stats["sim_order"][0], "stats": stats, "verdicts": verdicts}


def seed_result(families: dict[str, dict[str, Any]], held_pairs: list[dict[str, Any]],
                robust_over: Sequence[str]) -> list[dict[str, Any]]:
    """Per learned pair: held-out separation, the robustness class over ``robust_over``."""
    rows = []
    for p in held_pairs:
        a, b = p["better"], p["worse"]
        key, sign = (f"{a}|{b}", 1.0) if f"{a}|{b}" in families[robust_over[0]]["verdicts"] \
            else (f"{b}|{a}", -1.0)
        # Orient every family's difference as better - worse in held-out order.
        v = {f: (sign * (families[f]["verdicts"][key][0] or 0.0),
                 families[f]["verdicts"][key][1]) for f in robust_over}
        c = classify(v)
        rows.append({"better": a, "worse": b, "heldout_significant": p["significant"],
                     "heldout_diff": p["diff"], "heldout_ci": p["ci"], **c,
                     "confident_when_unseparated": (not p["significant"]
                                                    and c["verdict"] == ROBUST),
                     "wrong_when_separated": (p["significant"] and c["verdict"] != NOT_SEPARATED
                                              and c["sign"] < 0)})
    return rows


def run_grid(
    data: str | Path, *, seeds: Sequence[int], families: Sequence[str],
    nulls: Sequence[str] = NULLS, users: int | None = None,
    models: Sequence[str] = DEFAULT_MODELS, role: str | Path | RoleConfig | None = None,
    which: str = "test", max_pages: int = 5, resamples: int = 500,
    progress: Progress = lambda name, total: lambda: None,
    calibration: dict[str, dict[str, float]] | None = None,
    history_fraction: float = HISTORY_FRACTION, cutoffs: int = CUTOFFS,
) -> dict[str, Any]:
    """Every family and null simulator at every seed on the same users of split ``which``
    (tuning, development or test; leak-free global time splits). ``calibration``: family ->
    parameters (default: scenarios/taste_calibration.json). ``cutoffs``: rolling origins
    pooled (each user evaluated at one, everything fitted before it); with 1, the one
    global cutoff at the ``history_fraction`` quantile."""
    check_models(models)
    if not seeds:
        raise ValueError("eval validity: --seeds: at least one seed")
    quantiles = cutoff_quantiles(cutoffs, history_fraction)
    base = utility_role(role)
    runs = [*families, *(n for n in nulls if n not in families)]
    per_seed = []
    for seed in seeds:
        with memo():  # the arms' fits and the taste spaces are shared across families
            per_seed.append(_one_seed(data, seed, base, runs, families, nulls, users, models,
                                      which, max_pages, resamples, progress, calibration,
                                      quantiles))
    return {"seeds": list(seeds), "families": list(families), "nulls": list(nulls),
            "models": list(models), "users_of": which, "max_pages": max_pages,
            "history_fraction": history_fraction, "cutoffs": quantiles,
            "per_seed": per_seed, "summary": summarise(per_seed, runs, learned_arms(models))}


def cutoff_quantiles(cutoffs: int, history_fraction: float) -> list[float]:
    """The timestamp quantiles of the rolling origins: ``history_fraction`` alone for one,
    else evenly spaced in [FIRST_CUTOFF, LAST_CUTOFF]."""
    if cutoffs < 1:
        raise ValueError("eval validity: --cutoffs must be at least 1")
    if cutoffs == 1:
        return [history_fraction]
    return [round(float(q), 4) for q in np.linspace(FIRST_CUTOFF, LAST_CUTOFF, cutoffs)]


@dataclass
class _Origin:
    """One rolling origin of a seed: its preparation and the users evaluated there."""

    base_loaded: Any
    full: Any
    everyone: list[int]  # every user of the split owned by this origin (held-out pairs)
    test: list[int]  # those who browse (a seeded sample when --users)
    acc: dict[str, dict[str, np.ndarray]]  # held-out accuracy of ``everyone``


def _origins(data: str | Path, seed: int, base: RoleConfig, users: int | None,
             models: Sequence[str], which: str, max_pages: int,
             quantiles: Sequence[float]) -> list[_Origin]:
    """Every origin's preparation; each user of the split is evaluated at one origin (the
    hash of its id picks among those where it has >= 5 ratings before and one after)."""
    from simulations.eval.alignment_setup import origin_owners
    from simulations.run.runner import prepare
    from tools.splits import global_cutoff

    fulls, loadeds = [], []
    for q in quantiles:
        loaded = validity_scenario(data, base, seed=seed, models=models, max_pages=max_pages,
                                   history_fraction=q)
        loadeds.append(loaded)
        fulls.append(prepare(loaded, data=str(data)))
    ds = fulls[0].dataset
    owner = (np.zeros(ds.n_users, dtype=int) if len(quantiles) == 1 else
             origin_owners(ds, [global_cutoff(ds.interactions, q) for q in quantiles],
                           min_rating=0))
    owned = [[u for u in test_population(f, seed, None, which) if owner[u] == k]
             for k, f in enumerate(fulls)]
    pool = sorted(u for o in owned for u in o)
    if users is not None and users > len(pool):
        raise ValueError(f"eval validity: --users {users}: only {len(pool)} {which} users")
    if users is not None and users < len(pool):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 47]))
        keep = {int(u) for u in rng.choice(pool, size=users, replace=False)}
    else:
        keep = set(pool)
    out = []
    for f, loaded, everyone in zip(fulls, loadeds, owned, strict=True):
        acc = (heldout_accuracy(replace(f, population=everyone), models, everyone)
               if everyone else {})
        out.append(_Origin(loaded, f, everyone, [u for u in everyone if u in keep], acc))
    return out


def _one_seed(data: str | Path, seed: int, base: RoleConfig, runs: Sequence[str],
              families: Sequence[str], nulls: Sequence[str], users: int | None,
              models: Sequence[str], which: str, max_pages: int, resamples: int,
              progress: Progress, calibration: dict[str, dict[str, float]] | None,
              quantiles: Sequence[float]) -> dict[str, Any]:
    from simulations.run.worlds import taste_worlds

    origins = _origins(data, seed, base, users, models, which, max_pages, quantiles)
    learned = learned_arms(models)
    # Users are pooled origin by origin (the same order for held-out and simulated values).
    hr_all = {m: np.concatenate([o.acc[m]["hr@10"] for o in origins if o.everyone])
              for m in models}
    held = {m: np.concatenate([o.acc[m]["hr@10"][[o.everyone.index(u) for u in o.test]]
                               for o in origins if o.test]) for m in models}
    # Which held-out differences are significant is a property of the data: judged on every
    # user of the split (more power), while the simulation runs on the sample.
    held_pairs = significant_pairs({m: hr_all[m] for m in learned}, learned, seed=seed,
                                   resamples=resamples)
    n_test = sum(len(o.test) for o in origins)
    fams: dict[str, dict[str, Any]] = {}
    for fam in runs:
        rc = role_for_family(base, fam, calibration)
        step = progress(f"seed {seed} {fam}", n_test * len(models))

        def ended(n: int, step: Callable[[], None] = step) -> None:
            for _ in range(n):
                step()

        parts: dict[str, list[np.ndarray]] = {m: [] for m in models}
        for o in (o for o in origins if o.test):
            loaded = replace(o.base_loaded, role=rc)
            profiles, worlds = taste_worlds(o.full.dataset, o.full.history, loaded, seed)
            fprep = replace(o.full, loaded=loaded, world=worlds[rc.name],
                            profiles=profiles[rc.name], role_profiles=profiles, role_worlds={})
            prep, per = simulate_values(fprep, o.test, on_session_end=ended)
            ids = prep.dataset.user_ids
            for m in models:
                parts[m].append(np.array([per.get(m, {}).get(ids[u], {}).get(
                    "watch_rate", np.nan) for u in o.test]))
        watch = {m: np.concatenate(parts[m]) for m in models}
        fams[fam] = _family_result(watch, held, models, seed, resamples, held_pairs)
    over = [f for f in families if f not in nulls]
    return {
        "seed": seed, "users": n_test, "heldout_users": len(hr_all[models[0]]),
        "users_per_cutoff": [len(o.test) for o in origins],
        "heldout_hr10": {m: round(float(hr_all[m].mean()), 4) for m in models},
        "heldout_pairs": held_pairs, "families": fams,
        "robustness": seed_result(fams, held_pairs, over) if len(over) > 1 else []}


def summarise(per_seed: Sequence[dict[str, Any]], runs: Sequence[str],
              learned: Sequence[str]) -> dict[str, Any]:
    """Per family: the statistics' distribution over seeds and how often each arm wins;
    robustness tallies over seeds and pairs."""
    fam_sum = {}
    for f in runs:
        stats = [s["families"][f]["stats"] for s in per_seed]
        wins = {m: sum(s["families"][f]["winner"] == m for s in per_seed) for m in learned}
        fam_sum[f] = {**summarise_seeds(stats), "wins": wins}
    rob = [r for s in per_seed for r in s["robustness"]]
    tally: dict[str, dict[str, int]] = {"separated": {}, "unseparated": {}}
    for r in rob:
        side = tally["separated" if r["heldout_significant"] else "unseparated"]
        side[r["verdict"]] = side.get(r["verdict"], 0) + 1
    held_wins = {m: sum(max(learned, key=lambda a: s["heldout_hr10"][a]) == m
                        for s in per_seed) for m in learned}
    return {"families": fam_sum, "robustness": tally, "heldout_wins": held_wins,
            "confident_when_unseparated": sum(r["confident_when_unseparated"] for r in rob),
            "wrong_when_separated": sum(r["wrong_when_separated"] for r in rob)}
