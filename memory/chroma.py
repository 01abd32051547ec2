"""The chromadb seam: the one module of RecArena that imports chromadb.

Everything the long-term store does with chromadb's own objects goes through here: open
a client (telemetry off), open or create a collection and check that it holds this
embedder's vectors, read a collection page by page, upsert rows. ``memory.long_term``
calls it in the agents' process; ``memory.store_process`` calls it in the writer
process. chromadb is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from memory.records import MemoryRecord, from_metadata, texts_of

if TYPE_CHECKING:
    from chromadb.api.client import Client
    from chromadb.api.models.Collection import Collection

__all__ = ["LongTermStoreError", "client_for", "collection_rows", "open_collection",
           "upsert_rows"]

EMBEDDER_KEY, DIM_KEY = "recarena:embedder", "recarena:dim"


class LongTermStoreError(RuntimeError):
    """The store cannot be opened as asked (e.g. it holds another embedder's vectors)."""


def client_for(path: Path | None, collection: str) -> tuple[Client, str]:
    """A chromadb client for ``path`` (None: in memory) and the collection name to use.

    chromadb shares one in-memory database between all ephemeral clients of a process,
    so an in-memory store gets a name of its own (``collection`` plus a random suffix).
    """
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    # Typed as the concrete Client: the ClientAPI protocol does not declare close().
    if path is None:
        return (cast("Client", chromadb.EphemeralClient(settings=settings)),
                f"{collection}-{uuid.uuid4().hex[:12]}")
    path.mkdir(parents=True, exist_ok=True)
    return cast("Client", chromadb.PersistentClient(path=str(path), settings=settings)), \
        collection


def open_collection(client: Client, name: str, embedder: str, dim: int,
                    where: Path | None) -> Collection:
    """Collection ``name`` (created if missing) for vectors of ``embedder`` (``dim``).

    Raises:
        LongTermStoreError: It holds another embedder's vectors, or uses another space.
    """
    want = {EMBEDDER_KEY: embedder, DIM_KEY: int(dim)}
    col = client.get_or_create_collection(
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
    if EMBEDDER_KEY not in md:  # created elsewhere without our marks: claim it if empty
        if col.count():
            raise LongTermStoreError(f"collection {name!r} holds vectors of an unknown embedder")
        col.modify(metadata={**md, **want})
    elif md.get(EMBEDDER_KEY) != want[EMBEDDER_KEY] or md.get(DIM_KEY) != want[DIM_KEY]:
        raise LongTermStoreError(
            f"collection {name!r} at {where} holds {md.get(EMBEDDER_KEY)} vectors "
            f"({md.get(DIM_KEY)} dimensions); cannot use it with {want[EMBEDDER_KEY]} "
            f"({want[DIM_KEY]} dimensions)"
        )
    return col


def collection_rows(col: Collection, batch: int
                    ) -> Iterator[tuple[list[MemoryRecord], np.ndarray]]:
    """Everything in ``col``, page by page: (records, their embeddings)."""
    total = int(col.count())
    for offset in range(0, total, batch):
        got = col.get(include=["embeddings", "documents", "metadatas"], limit=batch,
                      offset=offset)
        ids = got["ids"]
        docs = texts_of(got["documents"], len(ids))
        mds = got["metadatas"] or []
        recs = [from_metadata(i, d, m) for i, d, m in zip(ids, docs, mds, strict=True)]
        yield recs, np.asarray(got["embeddings"], dtype=np.float32).reshape(len(ids), -1)


def upsert_rows(col: Collection, ids: Sequence[str], emb: np.ndarray, docs: Sequence[str],
                mds: Sequence[Mapping[str, Any]]) -> None:
    """Write rows, replacing any with the same ids."""
    col.upsert(ids=list(ids), embeddings=emb, documents=list(docs), metadatas=list(mds))
