"""Static planning: the same fixed path for every page (Agent4Rec's feed behaviour)."""

from __future__ import annotations

__all__ = ["static_plan"]


def static_plan(n_items: int) -> tuple[str, ...]:
    """Look at each item in page order, rate what was watched, then decide to stay or leave."""
    return (*(f"consider item {k + 1}" for k in range(n_items)), "rate watched", "stay or leave")
