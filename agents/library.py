"""What tools consult: one world's catalogue indexes, knowledge graph, past and models.

A :class:`Library` belongs to one world (a catalogue and the interactions that are in
the past for everyone who uses it). It builds each resource on first use and keeps it:
the BM25 index (tools/search.py), the vector index (memory/item_index.py, chromadb),
the knowledge graph (tools/kg.py, only for datasets with ``NAME.kg``/``NAME.link``),
per-user histories (tools/history.py) and classic models fit on the past
(tools/candidates.py). Agents of every role and arm share it: nothing in it changes
during a run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.embedders import EmbedderKind, make_embedder
from tools.candidates import CandidateGenerator
from tools.dataset import Dataset, Interactions
from tools.history import UserHistories
from tools.item_space import item_embeddings
from tools.kg import KnowledgeGraph, kg_files, load_kg
from tools.search import BM25Index, item_texts
from tools.world import World

if TYPE_CHECKING:
    from memory.item_index import ItemIndex

__all__ = ["Library"]


@dataclass(eq=False)
class Library:
    """Catalogue-level resources for tools, built lazily and thread-safely.

    Attributes:
        world: Item facts (catalogue, embeddings, mean ratings and popularity of the past).
        history: Everything that happened before the clock starts; tools see nothing else.
        user_ids, user_attrs: Dataset user ids and attributes (age, occupation, ...).
        name: The dataset's name.
        kg_paths: ``(NAME.kg, NAME.link)``, or None when the dataset has no graph.
        seed: For models with randomness.
        embedder: Embeds item texts and queries for vector search.
    """

    world: World
    history: Interactions
    user_ids: tuple[str, ...]
    user_attrs: tuple[dict[str, str], ...] = ()
    name: str = ""
    kg_paths: tuple[Path, Path] | None = None
    seed: int = 0
    embedder: EmbedderKind = "minilm"
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _locks: dict[Any, threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _made: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def for_dataset(cls, dataset: Dataset, history: Interactions, world: World | None = None,
                    *, seed: int = 0, embedder: EmbedderKind = "minilm") -> Library:
        """A library over ``dataset`` whose past is ``history`` (the world is built from
        it as the runner does, unless given)."""
        if world is None:
            past = dataset.with_interactions(history)
            world = World(catalog=dataset.catalog,
                          embeddings=item_embeddings(dataset, history, seed=seed),
                          item_mean=past.item_mean_rating, popularity=past.item_popularity,
                          global_mean=float(history.rating.mean()) if len(history) else 3.5)
        kg = kg_files(dataset.source, dataset.name) if dataset.source is not None else None
        return cls(world=world, history=history, user_ids=dataset.user_ids,
                   user_attrs=dataset.user_attrs, name=dataset.name, kg_paths=kg, seed=seed,
                   embedder=embedder)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return self.world.catalog.n_items

    def _once(self, key: Any, build: Callable[[], Any]) -> Any:
        # One lock per resource: building the vector index does not hold up BM25.
        with self._lock:
            if key in self._made:
                return self._made[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._made:
                self._made[key] = build()
            return self._made[key]

    def bm25(self) -> BM25Index:
        out: BM25Index = self._once("bm25", lambda: BM25Index.for_catalog(self.world.catalog))
        return out

    def vectors(self) -> ItemIndex:
        """The chromadb item index (built on first use: embeds every item text)."""
        from memory.item_index import item_index

        cat = self.world.catalog
        out: ItemIndex = self._once("vectors", lambda: item_index(
            make_embedder(self.embedder), cat.item_ids, item_texts(cat)))
        return out

    @property
    def no_kg(self) -> str:
        """Why there is no knowledge graph (one line), or "" when there is one."""
        if self.kg_paths is not None:
            return ""
        return (f"no knowledge graph for {self.name or 'this dataset'}: it has no "
                f"{self.name or 'NAME'}.kg and .link files (synthetic worlds never have one)")

    def kg(self) -> KnowledgeGraph | None:
        if self.kg_paths is None:
            return None
        paths = self.kg_paths
        out: KnowledgeGraph = self._once("kg", lambda: load_kg(*paths))
        return out

    def histories(self) -> UserHistories:
        out: UserHistories = self._once(
            "histories", lambda: UserHistories(self.history, self.n_users))
        return out

    def candidates(self, model: str, before: float | None = None) -> CandidateGenerator:
        """``model`` fit on the past (cut at ``before`` if given), once per (model, before)."""
        name = model.strip().lower()
        out: CandidateGenerator = self._once(("model", name, before), lambda: CandidateGenerator(
            name, self.history, self.n_users, self.n_items, seed=self.seed, before=before))
        return out
