"""A store the caller knows is new (``LongTermStore(..., writes="process", new=True)``:
a new run folder): ready without waiting for the writer process, its writes land in
chromadb in full (more rows than one message holds), and a collection the writer cannot
open is an error on the next write or flush, not a hang or a silent loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory import HashEmbedder, LongTermStore, LongTermStoreError, MemoryRecord


def _recs(agent: str, n: int) -> list[MemoryRecord]:
    return [MemoryRecord(id=f"{agent}-{i}", agent=agent, text=f"memory {i} of {agent}",
                         kind="factual", importance=0.5, step=i, round=0, meta={})
            for i in range(n)]


def test_a_new_store_writes_everything_through_the_writer(tmp_path: Path) -> None:
    s = LongTermStore(tmp_path, HashEmbedder(16), writes="process", new=True)
    s.add(_recs("a", 2500) + _recs("world", 3))
    assert s.count("a") == 2500  # the index answers at once
    s.close()
    with LongTermStore(tmp_path, HashEmbedder(16)) as back:  # chromadb itself
        assert back.count("a") == 2500 and back.count("world") == 3
        assert [r.id for r in back.recent("a", 2)] == ["a-2499", "a-2498"]


def test_a_collection_the_writer_cannot_open_fails_the_next_write(tmp_path: Path) -> None:
    with LongTermStore(tmp_path, HashEmbedder(16)) as old:  # made with another embedder
        old.add(_recs("a", 2))
    s = LongTermStore(tmp_path, HashEmbedder(32), writes="process", new=True)
    with pytest.raises(LongTermStoreError, match="holds hash-16 vectors"):
        s.add(_recs("a", 1))
        s.flush()
    s.close()  # reported once; the writer stops
    assert s._remote is None or s._remote._proc.poll() is not None
