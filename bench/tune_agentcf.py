"""Tune the item-agent control and its ablation (item updates off) on tuning users only.

Usage::

    nice -n 5 .venv/bin/python bench/tune_agentcf.py --data ../shared/data/ml-100k

Each arm (items learn / items fixed) gets its own best setting from a small grid (item and
user rates, description length, interactions per user, epochs), scored by NDCG@10 on sr
instances of the *tuning* users (1 positive + 9 negatives, the mean over the uniform and
the popularity sampler). Test users are never read. The chosen settings are written to
bench/results/agentcf_tuned.json, which bench/agentcf.py reads.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(ROOT):
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
GRID = {"control.item_rate": (0.25, 1.0), "memory.keep": (8, 24),
        "training.per_user": (10, 30), "training.epochs": (1, 2)}


def with_params(role: Any, params: dict[str, Any]) -> Any:
    """``role`` with dotted ``params`` set (validated again)."""
    data = role.model_dump()
    for key, value in params.items():
        head, _, leaf = key.partition(".")
        data[head][leaf] = value
    return type(role).model_validate(data)


def score_rows(setup: Any, rows: list[Any], users: list[int], samplers: tuple[str, ...],
               negatives: int, seed: int) -> dict[str, dict[str, float]]:
    """Per row, the mean NDCG@10 / HR@1 / MRR over the users' sr instances per sampler."""
    from agents.recsys.protocol import RankRequest
    from simulations.tasks.data import rank_instances
    from simulations.tasks.metrics import rank_metrics, rank_of

    out: dict[str, dict[str, float]] = {}
    for sampler in samplers:
        inst = rank_instances(setup, users, negatives, seed, sampler=sampler)
        for row in rows:
            answers = row.rank([RankRequest(user=x.user, candidates=list(x.candidates),
                                            k=len(x.candidates)) for x in inst])
            m = rank_metrics([rank_of(a.items, x.positive, x.candidates)
                              for a, x in zip(answers, inst, strict=True)])
            out.setdefault(row.name, {})[sampler] = m["ndcg@10"]
    return out


def main(argv: list[str] | None = None) -> int:
    from scenarios.item_role import load_item_role
    from simulations.tasks.agentcf import control_rankers, item_seeds, train_control
    from simulations.tasks.data import prepare_tasks
    from tools.dataset import load_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--role", default=str(ROOT / "scenarios" / "roles" / "item_agent.yaml"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "agentcf_tuned.json"))
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    setup = prepare_tasks(load_dataset(a.data))
    base = load_item_role(a.role)
    seeds = item_seeds(setup, base)
    train_users = sorted(set(setup.history.user.tolist()))
    log: list[dict[str, Any]] = []
    best: dict[str, tuple[float, dict[str, Any]]] = {}
    keys = list(GRID)
    for values in itertools.product(*(GRID[k] for k in keys)):
        params = dict(zip(keys, values, strict=True))
        for arm, on in (("items", True), ("fixed", False)):
            role = with_params(base, {**params, "training.item_updates": on})
            agents, stats = train_control(setup, role, train_users, a.seed, seeds=seeds)
            (row,) = control_rankers(agents, arm)
            got = score_rows(setup, [row], setup.tuning, ("uniform", "popularity"), 9,
                             a.seed)[arm]
            score = sum(got.values()) / len(got)
            log.append({"arm": arm, **params, "ndcg@10": got, "mean": round(score, 4),
                        "train_accuracy": [round(s.accuracy, 4) for s in stats]})
            print(json.dumps(log[-1]), flush=True)
            if arm not in best or score > best[arm][0]:
                best[arm] = (score, params)
    res = {"tuned_on": f"{len(setup.tuning)} tuning users (sr, 1 + 9, uniform and "
                       "popularity negatives, NDCG@10)", "grid": GRID, "seed": a.seed,
           "best": {arm: {"params": p, "ndcg@10": round(s, 4)} for arm, (s, p) in best.items()},
           "log": log, "seconds": round(time.perf_counter() - t0, 1)}
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(res["best"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
