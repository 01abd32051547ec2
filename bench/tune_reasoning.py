"""Tune the deterministic controls of the reasoning recommenders on tuning users only.

Usage::

    .venv/bin/python bench/tune_reasoning.py --data ../shared/data/ml-100k

On sr instances of *tuning* users (simulations/tasks/data.py: the global time split,
1 positive + 9 never-rated items, both the uniform and the popularity sampler; each
user's first future liked item as in the task, plus up to ``--per-user`` - 1 later liked
items for more signal, since there are only 30 tuning users), a
grid over the rationale control (the rule ranker's prior and weights, how many genres,
recent likes and neighbours the rationale names) and the query control (queries, fusion,
prior) is scored by the mean NDCG@10 over both samplers, with the same plain functions
the roles run (agents/recsys/rationale.py, queries.py). The best settings are printed and
saved to bench/results/tune-reasoning.json; they are what scenarios/roles/
rationale_control.yaml, rationale_ablation.yaml (the same prior) and query_control.yaml
ship with. Test users are never read here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(ROOT):  # run as a script: the packages first
    sys.path.insert(0, str(ROOT))

from agents.library import Library  # noqa: E402
from agents.recsys.queries import fuse, retrieve, rules_queries  # noqa: E402
from agents.recsys.rationale import ItemSims, rule_scores, rules_rationale  # noqa: E402
from scenarios.recsys import ReasoningConfig, RetrievalConfig, RuleRankerConfig  # noqa: E402
from simulations.run.sampling import keyed_rng  # noqa: E402
from simulations.tasks.data import (  # noqa: E402
    RankInstance,
    TaskSetup,
    prepare_tasks,
    rank_instances,
)
from simulations.tasks.metrics import rank_metrics, rank_of  # noqa: E402
from tools.dataset import load_dataset  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SAMPLERS = ("uniform", "popularity")
GRID_RATIONALE = {"prior": ("pop", "item_mean", "none"), "genre_weight": (0.0, 0.25, 0.5, 1.0),
                  "neighbour_weight": (0.0, 0.5, 1.0, 2.0, 4.0), "top_genres": (2, 3, 5),
                  "recent_likes": (3, 5, 10), "neighbours": (0, 5, 20)}
GRID_QUERIES: dict[str, tuple[Any, ...]] = {"queries": (2, 3, 5), "fusion": ("rrf", "score"),
                                           "prior": ("pop", "item_mean")}


def _ndcg10(ranks: list[int | None]) -> float:
    return rank_metrics(ranks)["ndcg@10"]


def later_instances(setup: TaskSetup, users: list[int], negatives: int, seed: int,
                    sampler: str, per_user: int) -> list[RankInstance]:
    """The sr instance of each user (their first future liked item) and, for more tuning
    signal, their next ``per_user - 1`` future liked items, each with its own clock (its
    time) and negatives drawn as the task draws them. Tools see only the history split,
    so the user's past is the same for all of them."""
    ds, hist = setup.dataset, setup.history
    pop = np.bincount(hist.item, minlength=ds.n_items)
    out = rank_instances(setup, users, negatives, seed, sampler=sampler)
    for u in users:
        items, ratings, ts = setup.future_of(u)
        liked_at = np.flatnonzero(ratings >= 4)[1:per_user]
        rated = np.union1d(hist.item[hist.user == u], items)
        pool = np.setdiff1d(np.flatnonzero(pop > 0), rated)
        for k, j in enumerate(liked_at):
            rng = keyed_rng(seed, u, 1000 + k)
            if sampler == "popularity":
                w = pop[pool].astype(np.float64)
                neg = rng.choice(pool, size=negatives, replace=False, p=w / w.sum())
            else:
                neg = rng.choice(pool, size=negatives, replace=False)
            cand = rng.permutation(np.concatenate([[items[j]], neg]))
            out.append(RankInstance(int(u), int(items[j]), tuple(int(i) for i in cand),
                                    float(ts[j])))
    return out


def tune(data: str, seed: int = 0, negatives: int = 9, per_user: int = 10) -> dict[str, Any]:
    setup = prepare_tasks(load_dataset(data))
    lib = Library.for_dataset(setup.dataset, setup.history, seed=seed)
    cat, world = lib.world.catalog, lib.world
    sims = ItemSims(lib.history, lib.n_users, lib.n_items)
    hist = lib.histories()
    inst = {s: later_instances(setup, setup.tuning, negatives, seed, s, per_user)
            for s in SAMPLERS}
    past = {x.user: hist.ratings(x.user, x.now) for s in SAMPLERS for x in inst[s]}

    rows = []
    rat_keys = ("top_genres", "recent_likes", "neighbours")
    for tg, rl, nb in itertools.product(*(GRID_RATIONALE[k] for k in rat_keys)):
        rcfg = ReasoningConfig(writer="rules", top_genres=tg, recent_likes=rl, neighbours=nb)
        rats = {u: rules_rationale(cat, sims, p, rcfg) for u, p in past.items()}
        for prior, gw, nw in itertools.product(GRID_RATIONALE["prior"],
                                               GRID_RATIONALE["genre_weight"],
                                               GRID_RATIONALE["neighbour_weight"]):
            cfg = RuleRankerConfig(prior=prior, genre_weight=gw, neighbour_weight=nw)
            score = {}
            for s in SAMPLERS:
                ranks = []
                for x in inst[s]:
                    sc = rule_scores(cat, sims, world.popularity, world.item_mean,
                                     x.candidates, rats[x.user], cfg)
                    order = [x.candidates[j] for j in np.argsort(-sc, kind="stable")]
                    ranks.append(rank_of(order, x.positive, x.candidates))
                score[s] = _ndcg10(ranks)
            rows.append({"top_genres": tg, "recent_likes": rl, "neighbours": nb,
                         "prior": prior, "genre_weight": gw, "neighbour_weight": nw,
                         **{f"ndcg@10_{s}": round(v, 4) for s, v in score.items()},
                         "objective": round(float(np.mean(list(score.values()))), 4)})
    best = max(rows, key=lambda r: r["objective"])  # first of equals: the grid's order
    # The ablation on the same tuning instances: the chosen prior without the rationale.
    abl = {}
    for s in SAMPLERS:
        ranks = []
        for x in inst[s]:
            sc = rule_scores(cat, sims, world.popularity, world.item_mean, x.candidates,
                             None, RuleRankerConfig(prior=best["prior"]))
            order = [x.candidates[j] for j in np.argsort(-sc, kind="stable")]
            ranks.append(rank_of(order, x.positive, x.candidates))
        abl[f"ndcg@10_{s}"] = round(_ndcg10(ranks), 4)

    qrows = []
    for nq, fusion, prior in itertools.product(*GRID_QUERIES.values()):
        qcfg = RetrievalConfig(writer="rules", queries=nq, depth=lib.n_items, fusion=fusion)
        score = {}
        for s in SAMPLERS:
            ranks = []
            for x in inst[s]:
                hits = retrieve(lib, rules_queries(cat, past[x.user], nq), qcfg)
                fused = fuse(x.candidates, hits, fusion)
                pri = rule_scores(cat, sims, world.popularity, world.item_mean, x.candidates,
                                  None, RuleRankerConfig(prior=prior))
                sc = fused + 1e-3 * pri
                order = [x.candidates[j] for j in np.argsort(-sc, kind="stable")]
                ranks.append(rank_of(order, x.positive, x.candidates))
            score[s] = _ndcg10(ranks)
        qrows.append({"queries": nq, "fusion": fusion, "prior": prior,
                      **{f"ndcg@10_{s}": round(v, 4) for s, v in score.items()},
                      "objective": round(float(np.mean(list(score.values()))), 4)})
    qbest = max(qrows, key=lambda r: r["objective"])
    return {"users": len(setup.tuning), "split": "tuning users", "seed": seed,
            "instances_per_sampler": len(inst[SAMPLERS[0]]), "per_user": per_user,
            "ablation_on_tuning": abl,
            "negatives": negatives, "objective": "mean NDCG@10 over uniform and popularity",
            "rationale_control": best, "query_control": qbest,
            "grid_rationale": {k: list(v) for k, v in GRID_RATIONALE.items()},
            "grid_queries": {k: list(v) for k, v in GRID_QUERIES.items()},
            "rationale_rows": len(rows), "query_rows": qrows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-user", type=int, default=10,
                    help="future liked items per tuning user (instances)")
    a = ap.parse_args(argv)
    res = tune(a.data, a.seed, per_user=a.per_user)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tune-reasoning.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: res[k] for k in ("users", "instances_per_sampler",
                                          "rationale_control", "ablation_on_tuning",
                                          "query_control")},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
