"""Agent memory: short-term windows, a chromadb long-term store, reflection, embedders.

Importing this package is cheap: chromadb is imported when a :class:`LongTermStore` is
built and sentence-transformers when a :class:`MiniLMEmbedder` first embeds.
"""

from memory.embedders import (
    CallableEmbedder,
    Embedder,
    EmbedderError,
    EmbedderKind,
    HashEmbedder,
    MiniLMEmbedder,
    make_embedder,
)
from memory.long_term import (
    WORLD,
    LongTermStore,
    LongTermStoreError,
    MemoryKind,
    MemoryRecord,
    MetaValue,
    ScoredMemory,
)
from memory.reflection import REFLECTION_IMPORTANCE, Reflector, importance_of
from memory.shared import SharedMemory
from memory.short_term import ShortTermMemory

__all__ = [
    "REFLECTION_IMPORTANCE",
    "WORLD",
    "CallableEmbedder",
    "Embedder",
    "EmbedderError",
    "EmbedderKind",
    "HashEmbedder",
    "LongTermStore",
    "LongTermStoreError",
    "MemoryKind",
    "MemoryRecord",
    "MetaValue",
    "MiniLMEmbedder",
    "Reflector",
    "ScoredMemory",
    "SharedMemory",
    "ShortTermMemory",
    "importance_of",
    "make_embedder",
]
