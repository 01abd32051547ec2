"""An in-process exact vector index of memories, one block of rows per owner.

``LongTermStore`` keeps chromadb as the store of record and this index beside it, warmed from
chromadb when a store opens and written through on every ``add``: a retrieval then compares
the query with the owner's own rows only (a matrix product over tens or hundreds of rows)
instead of asking chromadb, whose local engine scans the whole collection for a filtered
read. Rows are unit vectors, so the dot product is the cosine similarity.

numpy only; no chromadb here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

__all__ = ["OwnerRows", "VectorIndex"]

R = TypeVar("R")


@dataclass
class OwnerRows(Generic[R]):
    """One owner's rows: ``vecs[:n]`` are live, row i belongs to ``ids[i]`` / ``items[i]``."""

    vecs: np.ndarray
    ids: list[str]
    items: list[R]

    @property
    def n(self) -> int:
        return len(self.ids)


class VectorIndex(Generic[R]):
    """Exact nearest neighbours per owner, with upsert by id (an id may change owner).

    Args:
        dim: Vector dimension.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._owners: dict[str, OwnerRows[R]] = {}
        self._where: dict[str, tuple[str, int]] = {}  # id -> (owner, row)
        self._lock = threading.RLock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._where)

    def count(self, owner: str) -> int:
        with self._lock:
            rows = self._owners.get(owner)
            return rows.n if rows is not None else 0

    def owners(self) -> list[str]:
        with self._lock:
            return [o for o, rows in self._owners.items() if rows.n]

    def upsert(self, owner: str, ids: Sequence[str], vecs: np.ndarray,
               items: Sequence[R]) -> None:
        """Add or replace rows; ``vecs`` is (len(ids), dim), unit rows."""
        vecs = np.asarray(vecs, dtype=np.float32)
        if vecs.shape != (len(ids), self.dim) or len(items) != len(ids):
            raise ValueError(f"expected {len(ids)} rows of {self.dim} and as many items, got "
                             f"{vecs.shape} and {len(items)}")
        with self._lock:
            fresh: list[int] = []
            for i, rid in enumerate(ids):
                where = self._where.get(rid)
                if where is not None and where[0] == owner:
                    rows = self._owners[owner]
                    rows.vecs[where[1]] = vecs[i]
                    rows.items[where[1]] = items[i]
                    continue
                if where is not None:
                    self._remove(rid)
                fresh.append(i)
            if fresh:
                self._append(owner, [ids[i] for i in fresh], vecs[fresh],
                             [items[i] for i in fresh])

    def _append(self, owner: str, ids: list[str], vecs: np.ndarray, items: list[R]) -> None:
        rows = self._owners.get(owner)
        if rows is None:
            rows = self._owners[owner] = OwnerRows(
                np.empty((max(8, len(ids)), self.dim), np.float32), [], [])
        n, k = rows.n, len(ids)
        if n + k > len(rows.vecs):  # grow by doubling: appends stay amortised O(1)
            grown = np.empty((max(2 * len(rows.vecs), n + k), self.dim), np.float32)
            grown[:n] = rows.vecs[:n]
            rows.vecs = grown
        rows.vecs[n:n + k] = vecs
        for j, rid in enumerate(ids):
            self._where[rid] = (owner, n + j)
        rows.ids.extend(ids)
        rows.items.extend(items)

    def _remove(self, rid: str) -> None:
        owner, row = self._where.pop(rid)
        rows = self._owners[owner]
        last = rows.n - 1
        if row != last:  # move the last row into the hole
            rows.vecs[row] = rows.vecs[last]
            rows.ids[row], rows.items[row] = rows.ids[last], rows.items[last]
            self._where[rows.ids[row]] = (owner, row)
        rows.ids.pop()
        rows.items.pop()

    def items(self, owner: str) -> list[R]:
        with self._lock:
            rows = self._owners.get(owner)
            return list(rows.items) if rows is not None else []

    def nearest(self, owner: str, query: np.ndarray, n: int) -> list[tuple[R, float]]:
        """The ``n`` rows of ``owner`` most similar to ``query`` (a unit vector), as (item,
        cosine); ties go to the smaller id. Exact."""
        with self._lock:
            rows = self._owners.get(owner)
            if rows is None or rows.n == 0 or n <= 0:
                return []
            sims = rows.vecs[:rows.n] @ np.asarray(query, dtype=np.float32).reshape(-1)
            ids, items = rows.ids, rows.items
            if rows.n > n:
                # Keep everything at least as similar as the n-th best (ties included), then
                # order those exactly.
                cut = np.partition(sims, rows.n - n)[rows.n - n]
                pick: Iterable[int] = np.flatnonzero(sims >= cut).tolist()
            else:
                pick = range(rows.n)
            sim_list = sims.tolist()
            top = sorted(pick, key=lambda i: (-sim_list[i], ids[i]))[:n]
            return [(items[i], sim_list[i]) for i in top]
