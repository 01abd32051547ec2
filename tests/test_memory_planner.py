"""Short-term memory window and the static planner."""

from __future__ import annotations

from memory.short_term import ShortTermMemory
from planners.static import static_plan


def test_window_keeps_most_recent_oldest_first() -> None:
    m = ShortTermMemory(window=2)
    for i in range(4):
        m.add(7, {"item": str(i)})
    assert [r["item"] for r in m.recent(7)] == ["2", "3"]
    assert m.recent(8) == ()
    assert len(m) == 2


def test_zero_window_remembers_nothing() -> None:
    m = ShortTermMemory(window=0)
    m.add(1, {"item": "1"})
    assert m.recent(1) == ()


def test_static_plan_covers_every_item_then_exit() -> None:
    plan = static_plan(3)
    assert plan[:3] == ("consider item 1", "consider item 2", "consider item 3")
    assert plan[-1] == "stay or leave"
