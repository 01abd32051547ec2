"""Vector search over a catalogue: item texts as ``"world"`` records of a long-term store.

The store (:class:`~memory.long_term.LongTermStore`, chromadb) holds one world record per
item, id ``item:ID``; a search ranks by cosine similarity alone (retrieval weights
relevance 1, recency 0, importance 0). Embeddings come from the project's embedders
(MiniLM offline, or the hash embedder), never from chromadb.

Building embeds every item text once; :func:`item_index` keeps built indexes for the life
of the process, keyed by embedder and texts, so several runs in one process pay once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

from memory.embedders import Embedder
from memory.long_term import WORLD, LongTermStore, MemoryRecord

__all__ = ["ItemIndex", "item_index"]

_PREFIX = "item:"


class ItemIndex:
    """Nearest items to a text query.

    Args:
        embedder: Embeds item texts and queries.
        ids: Item ids (catalogue ids), one per text.
        texts: What each item is about (title, year, genres, description).
        path: Persist the chromadb collection there; None: in memory.
        collection: The store's collection name.
    """

    def __init__(self, embedder: Embedder, ids: Sequence[str], texts: Sequence[str],
                 path: Path | None = None, collection: str = "items") -> None:
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        if len(set(ids)) != len(ids):
            raise ValueError("item ids must be unique")
        self.ids = tuple(ids)
        self.store = LongTermStore(path, embedder, collection=collection)
        try:
            self.store.add([MemoryRecord(id=f"{_PREFIX}{i}", agent=WORLD, text=t, kind="world",
                                         importance=0.0, step=0, meta={"item": i})
                            for i, t in zip(ids, texts, strict=True)])
        except BaseException:
            self.store.close()
            raise

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` items most similar to ``query`` as (item id, cosine), best first."""
        if k <= 0 or not self.ids:
            return []
        hits = self.store.retrieve(WORLD, query, min(k, len(self.ids)), now_step=0,
                                   weights=(1.0, 0.0, 0.0), candidates=min(k, len(self.ids)))
        # relevance = (1 + cos) / 2, so cos = 2 * relevance - 1.
        return [(str(h.record.meta["item"]), 2.0 * h.relevance - 1.0) for h in hits]

    def close(self) -> None:
        self.store.close()


_INDEXES: dict[tuple[str, str], ItemIndex] = {}
_LOCK = threading.Lock()


def item_index(embedder: Embedder, ids: Sequence[str], texts: Sequence[str]) -> ItemIndex:
    """An in-memory :class:`ItemIndex`, built once per process for the same embedder and
    items (later calls with equal inputs return the same index)."""
    h = hashlib.sha256()
    for i, t in zip(ids, texts, strict=True):
        h.update(f"{i}\x00{t}\x01".encode())
    key = (embedder.name, h.hexdigest())
    with _LOCK:
        index = _INDEXES.get(key)
        if index is None:
            index = _INDEXES[key] = ItemIndex(embedder, ids, texts)
        return index
