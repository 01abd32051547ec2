"""A small synthetic feed world with utility users, written to disk for run-level tests
(resume, executors): two arms, an EASE refit between two rounds, new items in round 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["ROLE", "feed_scenario", "write_feed_scenario"]

ROLE: dict[str, Any] = {
    "kind": "role", "name": "viewer", "memory": {"short_term_window": 8},
    "planner": {"kind": "static"},
    "brain": {"kind": "utility", "params": {"watch_threshold": 0.5}},
}


def feed_scenario(name: str, seed: int, users: int) -> dict[str, Any]:
    """The scenario as a dict (its role file is ``role.yaml`` beside it)."""
    return {
        "kind": "scenario", "name": name, "seed": seed,
        "dataset": {"source": "synthetic", "history_fraction": 0.8,
                    "synthetic": {"n_users": 120, "n_items": 200, "n_genres": 8,
                                  "history_mean": 20}},
        "population": {"size": users, "role": "role.yaml"},
        # pop is fit 1; ease's first fit is 2 and its refit after round 1 is fit 3.
        "recommenders": [{"name": "pop", "model": "pop"},
                         {"name": "ease", "model": "ease", "params": {"l2": 100.0},
                          "retrain": True}],
        "environment": {"kind": "feed", "items_per_page": 4, "max_pages": 3, "rounds": 2},
        "events": [{"action": "add_items", "at_round": 2, "count": 10}],
        "output": {"dir": "runs"},
    }


def write_feed_scenario(folder: Path, name: str, seed: int, users: int) -> Path:
    """``role.yaml`` and ``NAME.yaml`` in ``folder``; the scenario's path."""
    (folder / "role.yaml").write_text(yaml.safe_dump(ROLE))
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(feed_scenario(name, seed, users)))
    return path
