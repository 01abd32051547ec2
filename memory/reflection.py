"""Reflective memory: when to reflect, how a reflection is stored, how much a memory matters.

A reflection (Agent4Rec's satisfaction note, MACRec's lesson) is written by the caller, an
LLM or a template, from the agent's recent memories; this module only keeps the cadence and
builds the record, so it stays free of LLM code.
"""

from __future__ import annotations

from collections.abc import Sequence

from memory.long_term import MemoryRecord

__all__ = [
    "REFLECTION_IMPORTANCE",
    "Reflector",
    "importance_of",
]

REFLECTION_IMPORTANCE = 0.9


class Reflector:
    """Says when an agent is due a reflection: after every ``every`` new memories.

    Args:
        every: Memories between reflections; 0 never reflects.
        importance: Importance given to reflection records.
    """

    def __init__(self, every: int, importance: float = REFLECTION_IMPORTANCE) -> None:
        if every < 0:
            raise ValueError("every must be >= 0")
        if not 0.0 <= importance <= 1.0:
            raise ValueError("importance must be in [0, 1]")
        self.every = every
        self.importance = importance
        self._pending: dict[str, int] = {}

    def note(self, agent: str, n: int = 1) -> bool:
        """Count ``n`` new memories of ``agent``; True when a reflection is due.

        When it is due the count restarts from zero (memories beyond the threshold in the
        same call are not carried over: the reflection covers them).
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        if self.every == 0:
            return False
        count = self._pending.get(agent, 0) + n
        if count >= self.every:
            self._pending[agent] = 0
            return True
        self._pending[agent] = count
        return False

    def pending(self, agent: str) -> int:
        """Memories counted for ``agent`` since its last reflection."""
        return self._pending.get(agent, 0)

    def reflection_record(
        self,
        agent: str,
        recent: Sequence[MemoryRecord],
        text: str,
        step: int,
        round: int,
    ) -> MemoryRecord:
        """The reflection ``text`` on ``recent`` as a memory of ``agent``.

        Its id is ``f"{agent}/reflection/{step}"``, so re-running a step replaces rather
        than duplicates it. ``meta`` records how many memories it summarises
        (``summarises``) and, when there are any, their steps (``from_step``, ``to_step``).
        """
        meta: dict[str, str | int | float | bool] = {"summarises": len(recent)}
        if recent:
            meta["from_step"] = min(r.step for r in recent)
            meta["to_step"] = max(r.step for r in recent)
        return MemoryRecord(
            id=f"{agent}/reflection/{step}",
            agent=agent,
            text=text,
            kind="reflection",
            importance=self.importance,
            step=step,
            round=round,
            meta=meta,
        )


def importance_of(kind: str, rating: int | None, watched: bool) -> float:
    """A simple importance heuristic, 0..1.

    - ``"reflection"``: 0.9 (a summary outweighs any single event).
    - ``"world"``: 0.5 (shared facts are neutral).
    - ``"factual"``: skipped (not watched) 0.1; watched without a rating 0.4; watched and
      rated ``0.4 + 0.2 * |rating - 3|``, so a 3 is 0.4, a 2 or 4 is 0.6 and a 1 or 5 is
      0.8: strong opinions are what a user remembers.

    Raises:
        ValueError: Unknown kind, or a rating outside 1..5.
    """
    if rating is not None and not 1 <= rating <= 5:
        raise ValueError(f"rating must be 1..5, got {rating}")
    if kind == "reflection":
        return REFLECTION_IMPORTANCE
    if kind == "world":
        return 0.5
    if kind != "factual":
        raise ValueError(f"unknown memory kind {kind!r}; expected factual, reflection or world")
    if not watched:
        return 0.1
    if rating is None:
        return 0.4
    return 0.4 + 0.2 * abs(rating - 3)
