"""Short-term memory: the last few things each agent saw and did."""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["ShortTermMemory"]


class ShortTermMemory:
    """A per-agent window of the ``window`` most recent records (plain JSON-able dicts)."""

    def __init__(self, window: int = 8, lessons: int = 5) -> None:
        if window < 0:
            raise ValueError("window must be >= 0")
        self.window = window
        self._mem: dict[int, deque[dict[str, Any]]] = {}
        # Lessons (reflective planning) outlive the window: they are few and matter most.
        self._lessons: dict[int, deque[str]] = {}
        self._max_lessons = lessons

    def add_lesson(self, agent: int, text: str) -> None:
        buf = self._lessons.setdefault(agent, deque(maxlen=self._max_lessons))
        buf.append(text)

    def lessons(self, agent: int) -> tuple[str, ...]:
        """Newest first."""
        return tuple(reversed(self._lessons.get(agent, ())))

    def add(self, agent: int, record: dict[str, Any]) -> None:
        if self.window == 0:
            return
        buf = self._mem.get(agent)
        if buf is None:
            buf = self._mem[agent] = deque(maxlen=self.window)
        buf.append(record)

    def recent(self, agent: int) -> tuple[dict[str, Any], ...]:
        """Oldest first."""
        buf = self._mem.get(agent)
        return tuple(buf) if buf else ()

    def __len__(self) -> int:
        return sum(len(b) for b in self._mem.values())
