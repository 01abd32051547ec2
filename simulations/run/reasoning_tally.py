"""Per arm, what the reasoning and query recommender roles prepared ahead and reused
(``rationale`` and ``queries`` trace events, written by agents/recsys/reasoned.py): the
``reasoning`` block of summary.json."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

__all__ = ["KINDS", "ReasoningTally"]

# Trace event type -> the prefix of its figures (agents/recsys/reasoned.py writes both).
KINDS = {"rationale": "rationales", "queries": "queries"}


class ReasoningTally:
    """Per arm: rationales and query sets prepared (written) and reused, with the cost of
    the prepared ones (a reuse costs nothing: it is the point of preparing ahead)."""

    def __init__(self) -> None:
        self._arms: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def add(self, ev: dict[str, Any]) -> None:
        kind = KINDS.get(ev["type"])
        if kind is None:
            return
        arm = self._arms[str(ev.get("arm"))]
        if ev.get("reused"):
            arm[f"{kind}_reused"] += 1
            return
        arm[f"{kind}_prepared"] += 1
        arm[f"{kind}_failed"] += ev.get("failure") is not None
        arm[f"{kind}_tokens_in"] += ev.get("tokens_in") or 0
        arm[f"{kind}_tokens_out"] += ev.get("tokens_out") or 0
        arm[f"{kind}_seconds"] += (ev.get("volatile") or {}).get("seconds") or 0.0

    def summary(self) -> dict[str, dict[str, Any]]:
        """{arm: figures}, only arms with a reasoning role; counts as ints, seconds rounded,
        and the hit rate reused / (prepared + reused)."""
        out: dict[str, dict[str, Any]] = {}
        for name, c in sorted(self._arms.items()):
            row: dict[str, Any] = {}
            for kind in sorted(set(KINDS.values())):
                prepared, reused = c[f"{kind}_prepared"], c[f"{kind}_reused"]
                if not prepared + reused:
                    continue
                for key in ("prepared", "reused", "failed", "tokens_in", "tokens_out"):
                    row[f"{kind}_{key}"] = int(c[f"{kind}_{key}"])
                row[f"{kind}_seconds"] = round(c[f"{kind}_seconds"], 3)
                row[f"{kind}_hit_rate"] = round(reused / (prepared + reused), 4)
            out[name] = row
        return out
