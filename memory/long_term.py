"""Long-term memory in chromadb: the one module of RecArena that imports chromadb.

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
"""

from __future__ import annotations

import math
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

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
from memory.vector_index import VectorIndex
from memory.write_behind import WriteBehind

if TYPE_CHECKING:
    from chromadb.api.client import Client
    from chromadb.api.models.Collection import Collection

__all__ = [
    "WORLD",
    "LongTermStore",
    "LongTermStoreError",
    "MemoryKind",
    "MemoryRecord",
    "MetaValue",
    "ScoredMemory",
]

_EMBEDDER_KEY, _DIM_KEY = "recarena:embedder", "recarena:dim"
# Rows per write-behind upsert: one blocks the event loop for ~0.4 ms a row, so this bounds
# how long a reply can wait on the writer; larger chunks cost less in total (~8 ms a call).
_WRITE_CHUNK = 64


class LongTermStoreError(RuntimeError):
    """The store cannot be opened as asked (e.g. it holds another embedder's vectors)."""


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
        write_behind: called on an event loop, ``add`` updates the index (needs
            ``index``) at once, so reads see every ``add`` as before, and leaves the
            chromadb writes, in chunks of 64 rows, to a task on that loop
            (``memory.write_behind``). :meth:`flush` / :meth:`aflush` wait for them;
            :meth:`close` flushes; a failed write raises on the next ``add``, ``flush``,
            ``aflush`` or ``close``.

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
        write_behind: bool = False,
    ) -> None:
        import chromadb
        from chromadb.config import Settings

        if exact_limit < 0:
            raise ValueError("exact_limit must be >= 0")
        if write_behind and not index:
            raise ValueError("write_behind needs the index (reads would miss queued writes)")
        self.embedder = embedder
        self.path = path
        self.exact_limit = exact_limit
        settings = Settings(anonymized_telemetry=False, allow_reset=False)
        collection = safe_collection_name(collection)
        # Typed as the concrete Client: the ClientAPI protocol does not declare close().
        self._client: Client
        if path is None:
            self._client = cast("Client", chromadb.EphemeralClient(settings=settings))
            name = f"{collection}-{uuid.uuid4().hex[:12]}"
        else:
            path.mkdir(parents=True, exist_ok=True)
            self._client = cast(
                "Client", chromadb.PersistentClient(path=str(path), settings=settings)
            )
            name = collection
        self.collection_name = name
        self._closed = False
        try:
            self._own = self._open(name)
            self._world = self._open(f"{name}.{WORLD}")
        except BaseException:
            self._client.close()
            raise
        self._max_batch = max(1, int(self._client.get_max_batch_size()))
        self._index: VectorIndex[MemoryRecord] | None = None
        if index:
            try:
                self._index = self._warm()
            except BaseException:
                self._client.close()
                raise
        self._writer = WriteBehind() if write_behind else None

    def _warm(self) -> VectorIndex[MemoryRecord]:
        """The index of everything already in chromadb, read page by page."""
        idx: VectorIndex[MemoryRecord] = VectorIndex(int(self.embedder.dim))
        for col in (self._own, self._world):
            total = int(col.count())
            for offset in range(0, total, self._max_batch):
                got = col.get(include=["embeddings", "documents", "metadatas"],
                              limit=self._max_batch, offset=offset)
                ids = got["ids"]
                docs = texts_of(got["documents"], len(ids))
                mds = got["metadatas"] or []
                recs = [from_metadata(i, d, m) for i, d, m in zip(ids, docs, mds, strict=True)]
                vecs = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(ids), -1)
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
        want = {_EMBEDDER_KEY: self.embedder.name, _DIM_KEY: int(self.embedder.dim)}
        col = self._client.get_or_create_collection(
            name,
            # None, not the default: chromadb's default embedding function downloads a model.
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata=want,
        )
        with warnings.catch_warnings():
            # embedding_function=None is stored as chromadb's "legacy" config, and reading it
            # back warns; having no embedding function is deliberate here.
            warnings.filterwarnings("ignore", "legacy embedding function", DeprecationWarning)
            config = col.configuration
        space = (config.get("hnsw") or {}).get("space")
        if space not in (None, "cosine"):
            raise LongTermStoreError(f"collection {name!r} uses the {space!r} space, not cosine")
        md = dict(col.metadata or {})
        if _EMBEDDER_KEY not in md:  # created elsewhere without our marks: claim it if empty
            if col.count():
                raise LongTermStoreError(
                    f"collection {name!r} holds vectors of an unknown embedder"
                )
            col.modify(metadata={**md, **want})
        elif md.get(_EMBEDDER_KEY) != want[_EMBEDDER_KEY] or md.get(_DIM_KEY) != want[_DIM_KEY]:
            raise LongTermStoreError(
                f"collection {name!r} at {self.path} holds {md.get(_EMBEDDER_KEY)} vectors "
                f"({md.get(_DIM_KEY)} dimensions); cannot use it with {want[_EMBEDDER_KEY]} "
                f"({want[_DIM_KEY]} dimensions)"
            )
        return col

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
                size: int) -> list[tuple[Collection, list[int]]]:
        """(collection, row numbers) in chunks of at most ``size`` (and chromadb's limit)."""
        size = max(1, min(size, self._max_batch))
        out = []
        for col, is_world in ((self._own, False), (self._world, True)):
            rows = [i for i, r in enumerate(recs) if (r.agent == WORLD) == is_world]
            out += [(col, rows[lo : lo + size]) for lo in range(0, len(rows), size)]
        return out

    @staticmethod
    def _upsert_job(col: Collection, recs: Sequence[MemoryRecord], vecs: np.ndarray,
                    chunk: list[int]) -> Callable[[], None]:
        ids = [recs[i].id for i in chunk]
        docs = [recs[i].text for i in chunk]
        mds: list[Mapping[str, Any]] = [to_metadata(recs[i]) for i in chunk]
        emb = vecs[chunk]

        def job() -> None:
            col.upsert(ids=ids, embeddings=emb, documents=docs, metadatas=mds)

        return job

    def flush(self) -> None:
        """Wait for queued chromadb writes (write-behind); raise the first that failed.

        From another thread than the writer's loop, that loop must keep running until
        this returns (``aflush`` on the loop before stopping it)."""
        if self._writer is not None:
            self._writer.flush()

    async def aflush(self) -> None:
        """``flush`` on the writer's own event loop."""
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
            if self._writer is not None:
                self._writer.flush()  # chromadb gets every queued row before it closes
        finally:
            self._drop()

    def _drop(self) -> None:
        try:
            if self.path is None:
                for name in (self.collection_name, f"{self.collection_name}.{WORLD}"):
                    self._client.delete_collection(name)
        finally:
            self._client.close()

    def __enter__(self) -> LongTermStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"LongTermStore({where}, {self.collection_name!r}, {self.embedder.name})"
