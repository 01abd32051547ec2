"""Long-term memory in chromadb (reached through ``memory.chroma``, its seam).

Memories are :class:`MemoryRecord` rows in chromadb (cosine space). Each belongs to an agent
(*personalized* memory) or to ``"world"`` (*persistent* knowledge shared by every agent).
Embeddings are always computed by the project's :class:`~memory.embedders.Embedder` and
passed in; chromadb's default embedding function (which downloads an ONNX model) is never
used, and its anonymized telemetry is switched off.

Retrieval follows Generative Agents: the memories of the agent (and of the world) most similar
to the query are the candidates, re-ranked by a weighted sum of

- relevance ``= (1 + cos) / 2``, cosine similarity mapped to [0, 1] (equivalently
  ``1 - d / 2`` for chromadb's cosine distance ``d = 1 - cos``);
- recency ``= decay ** (now_step - step)`` (1 for the current step, or a future one);
- importance, as stored (0..1).

Reads go to an in-process exact index (``memory.vector_index``) kept beside chromadb:
warmed from chromadb when the store opens, written through on every ``add``. chromadb stays
the store of record (what persists, what another process reopens); the index only answers
reads, because chromadb's local engine scans the whole collection for a filtered read
(43 ms at 100,000 memories against well under a millisecond for the agent's own rows).

chromadb is imported only when a store is built, so ``import memory`` stays fast.
With ``writes="process"`` it is imported only by the folder's writer process
(``memory.store_process``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from memory.chroma import (
    LongTermStoreError,
    client_for,
    collection_rows,
    open_collection,
    upsert_rows,
)
from memory.embedders import Embedder
from memory.records import (
    WORLD,
    MemoryKind,
    MemoryRecord,
    MetaValue,
    ScoredMemory,
    from_metadata,
    safe_collection_name,
    texts_of,
    to_metadata,
)
from memory.store_process import StoreProcess
from memory.vector_index import VectorIndex
from memory.write_behind import WriteBehind

if TYPE_CHECKING:
    from memory.chroma import Client, Collection

__all__ = [
    "WORLD",
    "LongTermStore",
    "LongTermStoreError",
    "MemoryKind",
    "MemoryRecord",
    "MetaValue",
    "ScoredMemory",
]

# Rows per write-behind upsert: one blocks the event loop for ~0.4 ms a row, so this bounds
# how long a reply can wait on the writer; larger chunks cost less in total (~8 ms a call).
_WRITE_CHUNK = 64
# Rows per message to a writer process of new collections (it splits to chromadb's limit).
_WRITE_CHUNK_PROCESS = 1000

Writes = Literal["now", "behind", "process"]


# One candidate: the record and its cosine similarity to the query.
_Cand = tuple[MemoryRecord, float]


class LongTermStore:
    """Per-agent and shared long-term memories in chromadb.

    Two collections: ``collection`` holds every agent's own memories (filtered by agent
    when read) and ``collection + ".world"`` the shared ``"world"`` memories, so that reading
    the world is an unfiltered nearest-neighbour query.

    Args:
        path: Folder for a persistent store (inside the run folder), or ``None`` for an
            in-memory store that disappears with :meth:`close` (tests).
        embedder: Computes every embedding; the collections remember the embedder's name
            and dimension and refuse to be reopened with another.
        collection: Collection name; one chromadb would reject (e.g. ``"A/B"``, or shorter
            than 3 characters) is mapped to a safe, stable one (see
            :attr:`collection_name`).
        index: Answer reads from the in-process index (the default): every candidate is
            exact. False reads through chromadb as below (kept to measure against, and as
            the reference the index is tested on).
        exact_limit: Without the index: an agent with at most this many memories has them
            all fetched and compared with the query exactly (chromadb's filtered vector
            search costs time in proportion to the whole collection, a plain filtered read
            about a third of that); above it, chromadb's approximate filtered search picks
            the candidates. 0 always uses chromadb's search.
        writes: How ``add`` writes chromadb (the index, which answers every read, is
            always updated at once, so reads see every ``add``):

            - ``"now"``: in the call;
            - ``"behind"``: called on an event loop, in chunks of 64 rows, by a task on
              that loop while the agents' calls are in flight (``memory.write_behind``;
              needs ``index``);
            - ``"process"``: by a writer process of the folder (``memory.store_process``;
              needs ``index`` and a ``path``): chromadb's work leaves this process.

            :meth:`flush` / :meth:`aflush` wait for queued writes; :meth:`close` flushes;
            a failed write raises on the next ``add``, ``flush``, ``aflush`` or ``close``.
        new: The caller knows the collections do not exist yet (a new run folder): with
            ``writes="process"`` nothing is read back, so the store is ready at once,
            without waiting for the writer process to boot (it opens them when it gets
            there; a failure raises like a failed write).

    chromadb shares one in-memory database between all ephemeral clients of a process, so
    an in-memory store gets collections of its own (``collection`` plus a random suffix),
    dropped on :meth:`close`. One writer per folder: not safe for concurrent writers (the
    index would not see another process's writes).
    """

    def __init__(
        self,
        path: Path | None,
        embedder: Embedder,
        collection: str = "memories",
        *,
        index: bool = True,
        exact_limit: int = 2000,
        writes: Writes = "now",
        new: bool = False,
    ) -> None:
        if exact_limit < 0:
            raise ValueError("exact_limit must be >= 0")
        if writes != "now" and not index:
            raise ValueError(f"writes={writes!r} needs the index (reads would miss queued "
                             "writes)")
        if writes == "process" and path is None:
            raise ValueError("writes='process' needs a folder (an in-memory store lives in "
                             "this process)")
        self.embedder = embedder
        self.path = path
        self.exact_limit = exact_limit
        self._closed = False
        self._client: Client | None = None
        self._remote: StoreProcess | None = None
        self._index: VectorIndex[MemoryRecord] | None = None
        self._writer = WriteBehind() if writes == "behind" else None
        name = self.collection_name = safe_collection_name(collection)
        try:
            if writes == "process":
                assert path is not None
                self._remote = StoreProcess.acquire(path)
                dim = int(embedder.dim)
                if new:  # nothing to read back: the writer opens them when it gets there
                    for col in self._names:
                        self._remote.post("open", col, embedder.name, dim)
                    self._max_batch = _WRITE_CHUNK_PROCESS  # it splits to chromadb's limit
                    self._index = VectorIndex(dim)
                else:
                    limits = [int(self._remote.call("open", col, embedder.name, dim))
                              for col in self._names]
                    self._max_batch = max(1, min(limits))
                    if index:
                        self._index = self._warm(
                            page for col in self._names
                            for page in self._remote.call("rows", col, self._max_batch))
            else:
                self._client, self.collection_name = client_for(path, name)
                self._own, self._world = (self._open(col) for col in self._names)
                self._max_batch = max(1, int(self._client.get_max_batch_size()))
                if index:
                    self._index = self._warm(
                        page for col in (self._own, self._world)
                        for page in collection_rows(col, self._max_batch))
        except BaseException:
            self._release(drop=False)
            raise

    @property
    def _names(self) -> tuple[str, str]:
        """The names of the agents' own collection and of the world's."""
        return self.collection_name, f"{self.collection_name}.{WORLD}"

    def _warm(self, pages: Iterator[tuple[list[MemoryRecord], np.ndarray]]
              ) -> VectorIndex[MemoryRecord]:
        """The index of everything already in chromadb, from its pages."""
        idx: VectorIndex[MemoryRecord] = VectorIndex(int(self.embedder.dim))
        for recs, vecs in pages:
            self._index_rows(idx, recs, vecs)
        return idx

    @staticmethod
    def _index_rows(idx: VectorIndex[MemoryRecord], recs: Sequence[MemoryRecord],
                    vecs: np.ndarray) -> None:
        by_agent: dict[str, list[int]] = {}
        for i, r in enumerate(recs):
            by_agent.setdefault(r.agent, []).append(i)
        for agent, rows in by_agent.items():
            idx.upsert(agent, [recs[i].id for i in rows], vecs[rows], [recs[i] for i in rows])

    def _open(self, name: str) -> Collection:
        assert self._client is not None
        return open_collection(self._client, name, self.embedder.name,
                               int(self.embedder.dim), self.path)

    def _live(self) -> None:
        if self._closed:
            raise LongTermStoreError("the long-term store is closed")

    def add(self, records: Sequence[MemoryRecord]) -> None:
        """Write records, replacing any with the same id (the last one wins within a call).

        All texts are embedded in one call; writes go in chunks of chromadb's batch limit.
        An id names one memory: do not reuse an agent's id for a ``"world"`` memory.
        """
        self._live()
        latest: dict[str, MemoryRecord] = {}
        for rec in records:
            latest.pop(rec.id, None)  # keep the order of last occurrence
            latest[rec.id] = rec
        recs = list(latest.values())
        if not recs:
            return
        vecs = self.embedder.embed([r.text for r in recs])
        if vecs.shape != (len(recs), self.embedder.dim):
            raise LongTermStoreError(
                f"{self.embedder.name} returned embeddings of shape {vecs.shape}, "
                f"expected {(len(recs), self.embedder.dim)}"
            )
        if self._remote is not None:
            # An earlier write's failure first, before anything of this one is sent.
            self._remote.raise_failed()
            for col, chunk in self._chunks(recs, self._max_batch):
                self._remote.post("upsert", col, *self._rows(recs, vecs, chunk))
            self._index_rows(cast(VectorIndex[MemoryRecord], self._index), recs, vecs)
            return
        if self._writer is not None:
            # chromadb behind, in small chunks (submit raises an earlier write's error
            # before anything of this one is written); the index now, so reads see it.
            self._writer.submit(*(self._upsert_job(col, recs, vecs, chunk)
                                  for col, chunk in self._chunks(recs, _WRITE_CHUNK)))
            self._index_rows(cast(VectorIndex[MemoryRecord], self._index), recs, vecs)
            return
        for col, chunk in self._chunks(recs, self._max_batch):
            self._upsert_job(col, recs, vecs, chunk)()
            if self._index is not None:  # written through once chromadb has it
                self._index_rows(self._index, [recs[i] for i in chunk], vecs[chunk])

    def _chunks(self, recs: Sequence[MemoryRecord],
                size: int) -> list[tuple[str, list[int]]]:
        """(collection name, row numbers) in chunks of at most ``size`` (and chromadb's
        limit)."""
        size = max(1, min(size, self._max_batch))
        out = []
        for col, is_world in zip(self._names, (False, True), strict=True):
            rows = [i for i, r in enumerate(recs) if (r.agent == WORLD) == is_world]
            out += [(col, rows[lo : lo + size]) for lo in range(0, len(rows), size)]
        return out

    @staticmethod
    def _rows(recs: Sequence[MemoryRecord], vecs: np.ndarray, chunk: list[int]
              ) -> tuple[list[str], np.ndarray, list[str], list[Mapping[str, Any]]]:
        """(ids, embeddings, documents, metadatas) of the rows ``chunk``."""
        return ([recs[i].id for i in chunk], vecs[chunk], [recs[i].text for i in chunk],
                [to_metadata(recs[i]) for i in chunk])

    def _upsert_job(self, col: str, recs: Sequence[MemoryRecord], vecs: np.ndarray,
                    chunk: list[int]) -> Callable[[], None]:
        target = self._world if col == self._names[1] else self._own
        rows = self._rows(recs, vecs, chunk)

        def job() -> None:
            upsert_rows(target, *rows)

        return job

    def flush(self) -> None:
        """Wait for queued chromadb writes; raise the first that failed.

        With ``writes="behind"``, from another thread than the writer's loop, that loop must
        keep running until this returns (``aflush`` on the loop before stopping it)."""
        if self._remote is not None:
            self._remote.call("flush")
            self._remote.raise_failed()
        if self._writer is not None:
            self._writer.flush()

    async def aflush(self) -> None:
        """``flush`` on the writer's own event loop (``writes="behind"``)."""
        if self._remote is not None:
            self.flush()
        if self._writer is not None:
            await self._writer.aflush()

    def hold_writes(self, hold: bool) -> None:
        """Pause (True) or resume (False, on the loop) write-behind chunks; reads and
        ``flush`` are unaffected (see ``memory.write_behind.WriteBehind.hold``)."""
        if self._writer is not None:
            if hold:
                self._writer.hold()
            else:
                self._writer.release()

    def retrieve(
        self,
        agent: str,
        query: str,
        k: int,
        *,
        now_step: int,
        weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
        decay: float = 0.995,
        include_world: bool = True,
        candidates: int | None = None,
    ) -> list[ScoredMemory]:
        """The ``k`` best memories of ``agent`` (and the world's) for ``query``, best first.

        The ``candidates`` (default ``max(4k, 20)``) memories most similar to the query are
        re-ranked by ``w_rel*relevance + w_rec*recency + w_imp*importance``. A memory
        outside the candidates is not considered however recent or important it is: pass a
        larger ``candidates`` to widen the net. Ties go to the later step, then the
        smaller id.

        Args:
            agent: Whose memories; ``"world"`` reads only the shared ones.
            query: What to look for (embedded with the store's embedder).
            k: How many to return.
            now_step: The current step; recency is measured from it.
            weights: (relevance, recency, importance) weights, each >= 0.
            decay: Recency factor per step, in (0, 1].
            include_world: Also consider the shared ``"world"`` memories.
            candidates: How many of the most similar memories to re-rank (>= k).
        """
        self._live()
        if k < 0:
            raise ValueError("k must be >= 0")
        if len(weights) != 3 or any(not math.isfinite(w) or w < 0 for w in weights):
            raise ValueError("weights must be three finite numbers >= 0")
        if not 0.0 < decay <= 1.0:
            raise ValueError("decay must be in (0, 1]")
        if candidates is not None and candidates < k:
            raise ValueError("candidates must be >= k")
        n = candidates if candidates is not None else max(4 * k, 20)
        if k == 0:
            return []
        world_n = self.count(WORLD) if include_world or agent == WORLD else 0
        if agent == WORLD and world_n == 0:
            return []
        qvec = self.embedder.embed([query])
        cands: list[_Cand] = []
        if self._index is not None:
            if agent != WORLD:
                cands += self._index.nearest(agent, qvec[0], n)
            if world_n:
                cands += self._index.nearest(WORLD, qvec[0], n)
        else:
            if agent != WORLD:
                cands += self._own_candidates(agent, qvec, n)
            if world_n:
                cands += self._nearest(self._world, qvec, min(n, world_n), None)
        # The n most similar of both sources, as if they were one collection.
        cands.sort(key=lambda c: (-c[1], c[0].id))
        w_rel, w_rec, w_imp = (float(w) for w in weights)
        scored: list[ScoredMemory] = []
        for rec, cos in cands[:n]:
            relevance = min(1.0, max(0.0, (1.0 + cos) / 2.0))
            recency = float(decay ** max(0, now_step - rec.step))
            importance = rec.importance
            score = w_rel * relevance + w_rec * recency + w_imp * importance
            scored.append(ScoredMemory(rec, relevance, recency, importance, score))
        scored.sort(key=lambda s: (-s.score, -s.record.step, s.record.id))
        return scored[:k]

    def _own_candidates(self, agent: str, qvec: np.ndarray, n: int) -> list[_Cand]:
        if self.exact_limit > 0:
            got = self._own.get(
                where={"agent": agent},
                limit=self.exact_limit + 1,
                include=["embeddings", "documents", "metadatas"],
            )
            ids = got["ids"]
            if len(ids) <= self.exact_limit:
                if not ids:
                    return []
                sims = (np.asarray(got["embeddings"], dtype=np.float32) @ qvec[0]).tolist()
                docs = texts_of(got["documents"], len(ids))
                mds = got["metadatas"] or []
                top = sorted(range(len(ids)), key=lambda i: (-sims[i], ids[i]))[:n]
                return [(from_metadata(ids[i], docs[i], mds[i]), sims[i]) for i in top]
        n = min(n, self._own.count())
        return self._nearest(self._own, qvec, n, {"agent": agent}) if n else []

    @staticmethod
    def _nearest(
        col: Collection, qvec: np.ndarray, n: int, where: dict[str, Any] | None
    ) -> list[_Cand]:
        res = col.query(
            query_embeddings=qvec,
            n_results=n,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        ids = res["ids"][0]
        docs = texts_of(res["documents"][0] if res["documents"] else None, len(ids))
        mds = (res["metadatas"] or [[]])[0]
        dists = (res["distances"] or [[]])[0]
        # chromadb's cosine distance is 1 - cos.
        return [
            (from_metadata(i, d, m), 1.0 - float(dist))
            for i, d, m, dist in zip(ids, docs, mds, dists, strict=True)
        ]

    def count(self, agent: str | None = None) -> int:
        """Memories in the store, or those of one agent (``"world"`` for the shared ones)."""
        self._live()
        if self._index is not None:
            return len(self._index) if agent is None else self._index.count(agent)
        if agent is None:
            return int(self._own.count()) + int(self._world.count())
        if agent == WORLD:
            return int(self._world.count())
        return len(self._own.get(where={"agent": agent}, include=[])["ids"])

    def recent(self, agent: str, n: int) -> list[MemoryRecord]:
        """The agent's ``n`` latest memories (world ones only for ``"world"``), latest first."""
        self._live()
        if n <= 0:
            return []
        if self._index is not None:
            latest = sorted(self._index.items(agent), key=lambda r: (-r.step, r.id))
            return latest[:n]
        if agent == WORLD:
            got = self._world.get(include=["documents", "metadatas"])
        else:
            got = self._own.get(where={"agent": agent}, include=["documents", "metadatas"])
        ids = got["ids"]
        docs = texts_of(got["documents"], len(ids))
        mds = got["metadatas"] or []
        recs = [from_metadata(i, d, m) for i, d, m in zip(ids, docs, mds, strict=True)]
        recs.sort(key=lambda r: (-r.step, r.id))
        return recs[:n]

    def close(self) -> None:
        """Release the database (an in-memory store's memories are dropped). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._index = None
        try:
            self.flush()  # chromadb gets every queued row before it closes
        finally:
            self._release(drop=True)

    def _release(self, *, drop: bool) -> None:
        remote, self._remote = self._remote, None
        client, self._client = self._client, None
        try:
            if remote is not None:
                remote.release()
            if client is not None and drop and self.path is None:
                for name in self._names:
                    client.delete_collection(name)
        finally:
            if client is not None:
                client.close()

    def __enter__(self) -> LongTermStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"LongTermStore({where}, {self.collection_name!r}, {self.embedder.name})"
