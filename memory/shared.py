"""Collaborative memory: a store several agents (a group, a team) read and write.

It is a :class:`~memory.long_term.LongTermStore` owned by no single agent: records are
filed under the store's own name, and every member reads all of them, ranked by the same
relevance / recency / importance score as personal memories. Who wrote a record is kept
in its metadata.
"""

from __future__ import annotations

from memory.long_term import LongTermStore, MemoryRecord, ScoredMemory

__all__ = ["SharedMemory"]


class SharedMemory:
    """A named shared store on top of a long-term store."""

    def __init__(self, store: LongTermStore, name: str) -> None:
        self.store, self.name = store, name
        self._owner = f"shared:{name}"
        self._n = 0

    def write(self, author: str, text: str, *, step: int, round: int,
              importance: float = 0.5, kind: str = "note") -> MemoryRecord:
        """File ``text`` by ``author``; returns the stored record."""
        self._n += 1
        rec = MemoryRecord(id=f"{self._owner}/{self._n}", agent=self._owner, text=text,
                           kind="factual", importance=importance, step=step, round=round,
                           meta={"author": author, "note_kind": kind})
        self.store.add([rec])
        return rec

    def read(self, query: str, k: int, *, now_step: int) -> list[ScoredMemory]:
        """The ``k`` shared records most relevant to ``query`` (any author)."""
        return self.store.retrieve(self._owner, query, k, now_step=now_step,
                                   include_world=False)

    def __len__(self) -> int:
        return self.store.count(self._owner)
