"""Outcomes of the conversation: a user describes a hidden target item and the recommender
answers turn by turn until the user accepts, gives up or runs out of turns.

Metrics: success rate, mean turns to success (over successes), recall@k (share of
conversations whose target was ever among the k recommended), and success by turn
(cumulative).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulations.analysis.outcomes import (
    Marks,
    Outcomes,
    ReportSection,
    Scoped,
    UserAcc,
    clip,
    register_outcomes,
)

if TYPE_CHECKING:
    from simulations.analysis.arm_stats import UserSums

__all__ = ["CONVERSATION", "CONVERSATION_FIELDS", "ConversationMetrics"]

LABELS = {
    "success_rate": "success",
    "turns_to_success": "turns to success",
    "recall_at_k": "recall@k",
    "conversations": "conversations",
}
CONVERSATION_FIELDS = ("conversations", "successes", "success_turns", "target_seen")
_STATS = ("success_rate", "recall_at_k")


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 6)


class _Conv:
    """Conversation outcomes: success, turns, whether the target was ever recommended."""

    def __init__(self) -> None:
        self.turns: list[tuple[bool, int, bool]] = []
        self.k = 0

    def add(self, ev: dict[str, Any]) -> None:
        self.turns.append((bool(ev["success"]), int(ev["turns"]), bool(ev["target_seen"])))
        self.k = int(ev.get("k", self.k))

    def result(self) -> dict[str, Any]:
        import numpy as np

        n = len(self.turns)
        wins = [t for ok, t, _ in self.turns if ok]
        horizon = max((t for _, t, _ in self.turns), default=0)
        return {
            "conversations": n,
            "success_rate": len(wins) / n if n else None,
            "turns_to_success": float(np.mean([float(t) for t in wins])) if wins else None,
            "recall_at_k": sum(seen for _, _, seen in self.turns) / n if n else None,
            "success_at_turn": {str(t): _round(sum(1 for w in wins if w <= t) / n)
                                for t in range(1, horizon + 1)} if n else {},
        }


class ConversationMetrics:
    """The conversation's ``RunMetrics``: one record per finished conversation."""

    def __init__(self) -> None:
        self.scopes: Scoped[_Conv] = Scoped(_Conv)
        self.user_sums: dict[str, UserSums] = {}

    def add(self, ev: dict[str, Any]) -> None:
        if ev.get("type") != "conversation_end":
            return
        from simulations.analysis.arm_stats import UserSums

        us = self.user_sums.setdefault(ev["arm"], UserSums())
        us.add(ev.get("user"), "conversations")
        us.add(ev.get("user"), "successes", float(bool(ev["success"])))
        us.add(ev.get("user"), "target_seen", float(bool(ev["target_seen"])))
        for c in self.scopes.targets(ev):
            c.add(ev)

    def arms(self, n_items: int, ratings: bool) -> dict[str, dict[str, Any]]:
        from simulations.analysis.arm_stats import arm_stats

        return {arm: {**self.scopes.result(arm, _Conv.result),
                      "stats": arm_stats(self.user_sums[arm], names=_STATS,
                                         sessions="conversations", ratings=ratings)}
                for arm in self.scopes.overall}


def _user_event(a: UserAcc, ev: dict[str, Any]) -> bool:
    if ev.get("type") != "conversation_end":
        return False
    a.f["conversations"] += 1
    if ev["success"]:
        a.f["successes"] += 1
        a.f["success_turns"] += float(ev["turns"])
    a.f["target_seen"] += float(bool(ev["target_seen"]))
    return True


# ----------------------------------------------------------------------------- trace agent


def _start(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    return f"conversation starts; hidden target: {m.e(title(ev.get('target')))}"


def _utterance(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    return f"{m.b('says')}: “{m.e(clip(ev.get('text', ''), 300))}”"


def _recommendation(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    names = "; ".join(m.e(title(i)) for i in ev.get("items", []))
    return f"turn {ev.get('turn')}: {m.e(ev.get('recommender'))} suggests {names}"


def _verdict(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    if ev.get("accept") is not None:
        return f"{m.b('accepts')} {m.e(title(ev.get('accept')))}"
    if ev.get("give_up"):
        return f"{m.b('gives up')}: {m.e(clip(ev.get('feedback', ''), 200))}"
    return f"rejects: {m.e(clip(ev.get('feedback', ''), 200))}"


def _end(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    return (f"conversation ended: {'success' if ev.get('success') else 'no success'} "
            f"({m.e(ev.get('reason'))}) after {ev.get('turns')} turns")


def _step_title(name: str) -> str | None:
    if name.startswith("t") and name[1:].isdigit():
        return "opening" if name == "t0" else f"turn {name[1:]}"
    return None


def _note(metrics: dict[str, Any], ci: list[str]) -> str:
    return ("users (n): users with a conversation in the arm. 95% intervals: percentile "
            "bootstrap over users (1,000 resamples), rates clipped to [0, 1].")


CONVERSATION = register_outcomes(Outcomes(
    environment="conversation",
    labels=LABELS,
    defaults=("success_rate", "turns_to_success", "recall_at_k"),
    metrics=ConversationMetrics,
    event_types=("conversation_end",),
    user_fields=CONVERSATION_FIELDS,
    user_event=_user_event,
    ratios={"success_rate": ("successes", "conversations"),
            "turns_to_success": ("success_turns", "successes"),
            "recall_at_k": ("target_seen", "conversations")},
    compared=("success_rate", "turns_to_success", "recall_at_k"),
    summary_columns=lambda metrics: (list(_STATS), ["turns_to_success"]),
    summary_note=_note,
    group_metrics=("success_rate",),
    report_sections=(ReportSection("conversation", "Conversations: success by turn",
                                   "simulations.report.sections:conversation", 90),),
    describe={"conversation_start": _start, "utterance": _utterance,
              "recommendation": _recommendation, "verdict": _verdict,
              "conversation_end": _end},
    seen_types=("recommendation", "conversation_start"),
    result_types=("utterance", "verdict", "conversation_end"),
    step_title=_step_title,
    setting=lambda env: {"rounds": env.get("rounds"), **(env.get("conversation") or {})},
))
