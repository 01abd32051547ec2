"""Attack success read from a run's trace: poisoned targets ranked first and watched.

A run with ``attack.item_text`` writes one ``attack`` event naming its targets; every
``page`` event lists the items a recommender put on a page (best first) and every
``decision`` event what a user did with one of them. Per arm (and per user role):

- ``target_first``: share of pages whose first item is a target;
- ``target_shown``: share of pages showing a target at all;
- ``target_watched``: share of shown targets that were watched.

For LLM arms on the local model these are plumbing figures (the model is a 270M base
model); the measured conclusions come from the deterministic paths
(``simulations.eval.attack_text``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["trace_outcomes"]


def trace_outcomes(events: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per arm: pages, target_first, target_shown, target_watched (see the module)."""
    targets: set[str] = set()
    acc: dict[str, dict[str, int]] = {}
    for e in events:
        kind = e.get("type")
        if kind == "attack":
            targets |= {str(t) for t in e.get("targets", ())}
        elif kind == "page":
            a = acc.setdefault(str(e["arm"]), dict.fromkeys(
                ("pages", "first", "shown", "target_decisions", "watched"), 0))
            items = [str(i) for i in e.get("items", ())]
            a["pages"] += 1
            a["first"] += int(bool(items) and items[0] in targets)
            a["shown"] += int(bool(set(items) & targets))
        elif kind == "decision" and str(e.get("item")) in targets:
            a = acc.setdefault(str(e["arm"]), dict.fromkeys(
                ("pages", "first", "shown", "target_decisions", "watched"), 0))
            a["target_decisions"] += 1
            a["watched"] += int(e.get("action") == "watch")
    return {arm: {"pages": a["pages"],
                  "target_first": a["first"] / a["pages"] if a["pages"] else None,
                  "target_shown": a["shown"] / a["pages"] if a["pages"] else None,
                  "target_watched": (a["watched"] / a["target_decisions"]
                                     if a["target_decisions"] else None)}
            for arm, a in sorted(acc.items())}
