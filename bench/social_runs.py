"""Runs of the social world for bench/social.py: one scenario run per (seed, condition),
read back as per-(arm, user, round) genre lists of recommender pages and mention events."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "social.yaml"
EASE = {"name": "ease", "model": "ease", "params": {"l2": 500.0}, "retrain": True}
RANDOM = {"name": "random", "model": "random", "retrain": True}


@dataclass
class RunData:
    """What the bench reads from one run."""

    seed: int
    condition: str
    seconds: float
    # arm -> (user, round) -> genre tuples of the items on its recommender pages
    browse: dict[str, dict[tuple[str, int], list[tuple[str, ...]]]] = field(
        default_factory=dict)
    # arm -> (user, round) -> genre tuples of its first recommender page of the round
    first: dict[str, dict[tuple[str, int], list[tuple[str, ...]]]] = field(
        default_factory=dict)
    mentions: list[dict[str, Any]] = field(default_factory=list)
    graph: dict[str, Any] = field(default_factory=dict)  # arm -> social_graph stats
    users: list[int] = field(default_factory=list)  # dataset user indices
    prepared: Any = None  # simulations.run.prepare.Prepared (for the graph)


def run_condition(seed: int, condition: str, overrides: Mapping[str, Any], data: str,
                  out: Path) -> RunData:
    """Run ``scenarios/social.yaml`` with ``overrides`` at ``seed`` into ``out``."""
    from simulations import api
    from simulations.run.prepare import prepare
    from simulations.run.runner import run

    t0 = time.perf_counter()
    loaded = api.load(SCENARIO, overrides=dict(overrides), seed=seed)
    prep = prepare(loaded, data=data)
    res = run(prep, out)
    if res.status != "completed":
        raise RuntimeError(f"{condition} seed {seed}: run {res.status}")
    rd = read_run(out, seed, condition)
    rd.seconds, rd.users, rd.prepared = time.perf_counter() - t0, list(prep.population), prep
    return rd


def read_run(out: Path, seed: int, condition: str) -> RunData:
    """The pages, mentions and graph statistics of the run folder ``out``."""
    rd = RunData(seed, condition, 0.0)
    browse: dict[str, dict[tuple[str, int], list[tuple[str, ...]]]] = defaultdict(
        lambda: defaultdict(list))
    first: dict[str, dict[tuple[str, int], list[tuple[str, ...]]]] = defaultdict(dict)
    first_tick: dict[tuple[str, str, int], int] = {}
    with (out / "trace.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            ev = json.loads(line)
            t = ev.get("type")
            if t == "decision" and ev.get("via") == "browse" \
                    and ev.get("action") in ("watch", "skip"):
                key = (str(ev["user"]), int(ev["round"]))
                genres = tuple(ev.get("genres") or ())
                browse[ev["arm"]][key].append(genres)
                tick = first_tick.setdefault((ev["arm"], *key), int(ev["tick"]))
                if tick == int(ev["tick"]):
                    first[ev["arm"]].setdefault(key, []).append(genres)
            elif t == "mention":
                rd.mentions.append(ev)
            elif t == "social_graph":
                rd.graph[ev["arm"]] = {k: ev.get(k) for k in (
                    "nodes", "edges", "components", "largest_component_share", "clustering",
                    "same_share", "assortativity")}
    rd.browse = {a: dict(v) for a, v in browse.items()}
    rd.first = {a: dict(v) for a, v in first.items()}
    return rd
