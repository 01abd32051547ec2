"""Memory records and their chromadb rows (metadata, collection names).

Split from ``memory.long_term`` (which re-exports the public names) to keep modules small.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

__all__ = [
    "WORLD",
    "MemoryKind",
    "MemoryRecord",
    "MetaValue",
    "ScoredMemory",
    "from_metadata",
    "safe_collection_name",
    "texts_of",
    "to_metadata",
]

WORLD = "world"
MemoryKind = Literal["factual", "reflection", "world"]
MetaValue = str | int | float | bool

_KINDS: frozenset[str] = frozenset(get_args(MemoryKind))
# Caller metadata is stored under this prefix so it can never clobber the store's own keys.
_META = "m."


@dataclass(frozen=True)
class MemoryRecord:
    """One memory.

    Attributes:
        id: Stable identifier; writing a record with an existing id replaces it.
        agent: The owning agent's id, or ``"world"`` for knowledge shared by all agents.
        text: What is remembered, in words; this is what gets embedded.
        kind: ``"factual"`` (shown, watched, rated), ``"reflection"`` (a summary written
            every few memories) or ``"world"`` (shared knowledge).
        importance: 0..1, see :func:`memory.reflection.importance_of`.
        step: Simulation step when it was written; increases monotonically over a run.
        round: Simulation round.
        meta: Extra scalar fields (chromadb accepts no None and no lists).
    """

    id: str
    agent: str
    text: str
    kind: MemoryKind
    importance: float
    step: int
    round: int = 0
    meta: dict[str, MetaValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a memory needs a non-empty id")
        if not self.agent:
            raise ValueError(f"memory {self.id!r}: agent must not be empty")
        if self.kind not in _KINDS:
            raise ValueError(f"memory {self.id!r}: kind must be one of {sorted(_KINDS)}")
        imp = float(self.importance)
        if not 0.0 <= imp <= 1.0:
            raise ValueError(f"memory {self.id!r}: importance {self.importance} not in [0, 1]")
        for key, value in self.meta.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"memory {self.id!r}: meta keys must be non-empty strings")
            if not isinstance(value, str | int | float | bool):
                raise ValueError(
                    f"memory {self.id!r}: meta[{key!r}] must be str, int, float or bool, "
                    f"not {type(value).__name__}"
                )
        object.__setattr__(self, "importance", imp)
        object.__setattr__(self, "meta", dict(self.meta))


@dataclass(frozen=True)
class ScoredMemory:
    """A retrieved memory with its score and the components it was computed from."""

    record: MemoryRecord
    relevance: float
    recency: float
    importance: float
    score: float


def to_metadata(rec: MemoryRecord) -> dict[str, MetaValue]:
    """The chromadb metadata of a record (caller's ``meta`` under the ``m.`` prefix)."""
    md: dict[str, MetaValue] = {
        "agent": rec.agent,
        "kind": rec.kind,
        "importance": float(rec.importance),
        "step": int(rec.step),
        "round": int(rec.round),
    }
    for key, value in rec.meta.items():
        md[_META + key] = value
    return md


def from_metadata(rid: str, text: str | None, md: Mapping[str, Any]) -> MemoryRecord:
    """The record of a chromadb row (inverse of :func:`to_metadata`)."""
    return MemoryRecord(
        id=rid,
        agent=str(md["agent"]),
        text=text or "",
        kind=cast(MemoryKind, md["kind"]),
        importance=float(md["importance"]),
        step=int(md["step"]),
        round=int(md.get("round", 0)),
        meta={k[len(_META):]: v for k, v in md.items() if k.startswith(_META)},
    )


_NAME_OK = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,478}[a-zA-Z0-9]")


def safe_collection_name(name: str) -> str:
    """``name`` if chromadb accepts it (with room for our suffixes), else a safe stable one.

    chromadb wants 3-512 characters of ``[a-zA-Z0-9._-]``, starting and ending with a letter
    or digit, without "..": an arm called "A/B" or "ab" becomes ``mem-A_B-<hash>``.
    """
    if _NAME_OK.fullmatch(name) and ".." not in name:
        return name
    safe = re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:40]
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=4).hexdigest()
    return f"mem-{safe}-{digest}" if safe else f"mem-{digest}"


def texts_of(docs: Sequence[str] | None, n: int) -> list[str | None]:
    """A chromadb answer's documents, or ``n`` Nones when none were included."""
    # chromadb returns None instead of a list when nothing was included.
    return list(docs) if docs is not None else [None] * n
