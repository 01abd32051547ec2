"""Where item and user descriptions live: the same long-term store as users' memories.

A description is one ``reflection`` record per agent (``item:ID`` or ``user:ID``) whose id
is fixed, so a rewrite replaces it (memory/long_term.py upserts by id); each training
choice and its reason is a ``factual`` record of the user, which the ``retrieval``
inference mode reads back by similarity to a candidate. An in-process copy answers
reads of descriptions (the store is the record, the dict the cache).

``prefix`` keeps learners that share one store apart (``ctl/item:3`` beside ``item:3``).
``batch``: writes wait in a buffer until :meth:`flush` (one batched upsert instead of
one chromadb call per update; the deterministic control flushes at each epoch end).
Records have fixed ids, so a flushed buffer leaves the store exactly as per-update
writes would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from memory.long_term import LongTermStore, MemoryRecord

__all__ = ["Descriptions", "open_store"]


def open_store(folder: Path | None) -> LongTermStore:
    """The long-term store item and user descriptions live in (in memory without a folder;
    the ``hash`` embedder: descriptions are matched by words, offline)."""
    from memory.embedders import HashEmbedder

    return LongTermStore(folder / "memory" if folder else None, HashEmbedder(256))


class Descriptions:
    """Item and user descriptions, with the store of record behind them (or none)."""

    def __init__(self, items: Sequence[str], n_users: int, *, user_default: str,
                 store: LongTermStore | None = None, ids: Sequence[str] | None = None,
                 prefix: str = "", batch: bool = False) -> None:
        self._items = list(items)
        self._users = [user_default] * n_users
        self.store = store
        self._ids = ids
        self.item_ids: Sequence[str] = ids if ids is not None else [
            str(i) for i in range(len(self._items))]
        self._step = 0
        self.writes = 0
        self.prefix = prefix
        self._batch = batch
        self._pending: list[MemoryRecord] = []
        if store is not None:
            store.add([self._record("item", i, t) for i, t in enumerate(self._items)])

    def _record(self, who: str, k: int, text: str, kind: str = "reflection",
                suffix: str = "description") -> MemoryRecord:
        agent = f"{self.prefix}{who}:{k}"
        return MemoryRecord(id=f"{agent}:{suffix}", agent=agent, text=text,
                            kind=kind, importance=0.5, step=self._step)  # type: ignore[arg-type]

    def item(self, i: int) -> str:
        return self._items[i]

    def user(self, u: int) -> str:
        return self._users[u]

    def items(self) -> list[str]:
        return list(self._items)

    def _write(self, rec: MemoryRecord) -> None:
        self.writes += 1
        if self.store is None:
            return
        if self._batch:
            self._pending.append(rec)
        else:
            self.store.add([rec])

    def flush(self) -> int:
        """Write the buffered records (``batch``); how many were written."""
        recs, self._pending = self._pending, []
        if self.store is not None and recs:
            self.store.add(recs)
        return len(recs)

    def set_item(self, i: int, text: str, step: object = None) -> None:
        self._step += 1
        self._items[i] = text
        self._write(self._record("item", i, text))

    def set_user(self, u: int, text: str, step: object = None) -> None:
        self._step += 1
        self._users[u] = text
        self._write(self._record("user", u, text))

    def remember_choice(self, u: int, item: int, reason: str) -> None:
        """A factual memory of the user: what it chose and why."""
        self._step += 1
        what = self._ids[item] if self._ids is not None else str(item)
        text = f"chose item {what}: {reason}" if reason else f"chose item {what}"
        self._write(self._record("user", u, text, "factual", f"choice{self._step}"))

    def recall(self, u: int, query: str, k: int) -> list[str]:
        """The user's remembered choices most similar to ``query`` (none without a store)."""
        if self.store is None:
            return []
        self.flush()  # reads see every write
        got = self.store.retrieve(f"{self.prefix}user:{u}", query, k, now_step=self._step,
                                  include_world=False)
        return [m.record.text for m in got if m.record.kind == "factual"]
