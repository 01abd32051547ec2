"""``recarena eval attack`` for ``attack.item_text``: poisoned targets on pages, first and
watched, clean twin against attacked run, paired over seeds.

The clean twin's trace has no ``attack`` event, so its outcomes are read for the targets
the attacked run names (``simulations.eval.attack_trace``). Every arm shares the poisoned
catalogue (the attack is on the platform), so every arm is compared with its own clean twin.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from simulations.eval.attack import clean_attacked
from simulations.eval.attack_trace import trace_outcomes
from simulations.record.trace import iter_trace

__all__ = ["OUTCOMES", "measure"]

OUTCOMES = ("target_first", "target_shown", "target_watched")


def _targets(run_dir: Any) -> list[str]:
    for ev in iter_trace(run_dir / "trace.jsonl"):
        if ev.get("type") == "attack" and "targets" in ev:
            return [str(t) for t in ev["targets"]]
    return []


def measure(ctx: Any) -> dict[str, Any]:
    """Per arm and outcome: clean, attacked and their paired difference over seeds."""
    cells: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    per_seed: list[dict[str, Any]] = []
    for sr in ctx.runs:
        targets = _targets(sr.attacked_dir)
        head = [{"type": "attack", "targets": targets}]
        clean = trace_outcomes(chain(head, iter_trace(sr.clean_dir / "trace.jsonl")))
        hit = trace_outcomes(iter_trace(sr.attacked_dir / "trace.jsonl"))
        per_seed.append({"seed": sr.seed, "targets": targets, "clean": clean,
                         "attacked": hit})
        for arm in sorted(set(clean) & set(hit)):
            for o in OUTCOMES:
                a, b = clean[arm][o], hit[arm][o]
                if a is None or b is None:
                    continue
                c = cells.setdefault(arm, {}).setdefault(o, ([], []))
                c[0].append(a)
                c[1].append(b)
    arms = {arm: {o: clean_attacked(a, b) for o, (a, b) in outs.items()}
            for arm, outs in cells.items()}
    first = ctx.loaded.scenario.attack.item_text
    return {"families": list(first.families), "defences": list(first.defences),
            "arms": arms, "per_seed": per_seed}
