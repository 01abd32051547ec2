"""The data model: a catalogue, users and their rated interactions (``tools.dataset``
reads them from disk; ``tools.csv_data`` from one CSV file)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["Catalog", "DataError", "Dataset", "Interactions", "ItemTexts",
           "default_description", "item_note"]


class DataError(ValueError):
    """A data file is missing or malformed; the message names file and line."""


def default_description(title: str, year: str, genres: Sequence[str]) -> str:
    """What an item without a description is described as: its title, year and genres."""
    kinds = ", ".join(genres) or "unclassified"
    return f"{title} ({year}), {kinds}." if year else f"{title}, {kinds}."


class ItemTexts:
    """What item agents say of who likes each item, as prompts read it now.

    One object per run, shared by every copy of the catalogue (worlds, libraries, agents'
    runtimes): the arm being served puts its own item agents' texts here when it opens
    and between rounds (agents/items/live.py), so prompts always show that arm's items.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts: tuple[str, ...] = tuple(texts)


@dataclass(frozen=True, eq=False)
class Catalog:
    """Items with their descriptive fields, indexed 0..n_items-1."""

    item_ids: tuple[str, ...]
    titles: tuple[str, ...]
    genres: tuple[tuple[str, ...], ...]
    years: tuple[str, ...] = ()
    descriptions: tuple[str, ...] = ()
    # What item agents say of who likes each item (scenario ``item_agents:``), or None.
    agent_texts: ItemTexts | None = None

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        if not self.years:
            object.__setattr__(self, "years", ("",) * n)
        if not self.descriptions:
            object.__setattr__(
                self,
                "descriptions",
                tuple(default_description(t, y, g)
                      for t, y, g in zip(self.titles, self.years, self.genres, strict=True)),
            )

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @cached_property
    def index(self) -> dict[str, int]:
        return {iid: i for i, iid in enumerate(self.item_ids)}

    @cached_property
    def genre_names(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for gs in self.genres:
            for g in gs:
                seen.setdefault(g, None)
        return tuple(sorted(seen))

    @cached_property
    def genre_matrix(self) -> np.ndarray:
        """Items x genres, 0/1 float32."""
        col = {g: j for j, g in enumerate(self.genre_names)}
        m = np.zeros((self.n_items, len(col)), dtype=np.float32)
        for i, gs in enumerate(self.genres):
            for g in gs:
                m[i, col[g]] = 1.0
        return m


def item_note(catalog: Catalog, item: int) -> str | None:
    """What prompts add to an item's facts: its item agent's "who likes me" text, or None.

    The one place item text for prompts comes from beyond the catalogue's own fields: LLM
    users (agents/brains/prompts.item_line) and recommender roles
    (agents/recsys/role.cand_line) both read it.
    """
    if catalog.agent_texts is None:
        return None
    return f"liked by {catalog.agent_texts.texts[item]}"


@dataclass(frozen=True, eq=False)
class Interactions:
    """Parallel arrays of (user, item, rating, timestamp), dense indices."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    ts: np.ndarray

    @staticmethod
    def empty() -> Interactions:
        return Interactions(
            np.zeros(0, np.int32), np.zeros(0, np.int32),
            np.zeros(0, np.float32), np.zeros(0, np.float64),
        )

    @staticmethod
    def from_lists(
        user: Sequence[int], item: Sequence[int], rating: Sequence[float], ts: Sequence[float]
    ) -> Interactions:
        return Interactions(
            np.asarray(user, np.int32), np.asarray(item, np.int32),
            np.asarray(rating, np.float32), np.asarray(ts, np.float64),
        )

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def select(self, mask: np.ndarray) -> Interactions:
        return Interactions(self.user[mask], self.item[mask], self.rating[mask], self.ts[mask])

    def concat(self, other: Interactions) -> Interactions:
        return Interactions(
            np.concatenate([self.user, other.user]),
            np.concatenate([self.item, other.item]),
            np.concatenate([self.rating, other.rating]),
            np.concatenate([self.ts, other.ts]),
        )

    def matrix(self, n_users: int, n_items: int, *, binary: bool = True) -> sp.csr_matrix:
        """User x item CSR; duplicates keep the last value (binary: 1.0)."""
        vals = np.ones(len(self), np.float32) if binary else self.rating.astype(np.float32)
        # Later interactions overwrite earlier ones: dedupe by keeping the last occurrence.
        key = self.user.astype(np.int64) * n_items + self.item
        _, last = np.unique(key[::-1], return_index=True)
        keep = len(self) - 1 - last
        m = sp.csr_matrix(
            (vals[keep], (self.user[keep], self.item[keep])), shape=(n_users, n_items),
            dtype=np.float32,
        )
        m.sort_indices()
        return m


@dataclass(frozen=True, eq=False)
class Dataset:
    """A catalogue, a list of users and their interactions."""

    name: str
    catalog: Catalog
    user_ids: tuple[str, ...]
    interactions: Interactions
    user_attrs: tuple[dict[str, str], ...] = ()
    # Optional ground-truth item vectors (the synthetic world has them); None for real data.
    item_vectors: np.ndarray | None = field(default=None, repr=False)
    # The folder the files came from (None: generated); side files such as a knowledge
    # graph (NAME.kg, NAME.link) are looked up there.
    source: Path | None = None
    # False for implicit feedback (a CSV without a rating column): every interaction is
    # 1.0 and rating figures (mean rating, RMSE, rating histograms) are "n/a".
    has_ratings: bool = True

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return self.catalog.n_items

    @cached_property
    def item_mean_rating(self) -> np.ndarray:
        """Mean rating per item, shrunk towards the global mean (5 pseudo-ratings)."""
        inter = self.interactions
        g = float(inter.rating.mean()) if len(inter) else 3.0
        s = np.bincount(inter.item, weights=inter.rating, minlength=self.n_items)
        c = np.bincount(inter.item, minlength=self.n_items)
        return ((s + 5.0 * g) / (c + 5.0)).astype(np.float32)

    @cached_property
    def item_popularity(self) -> np.ndarray:
        return np.bincount(self.interactions.item, minlength=self.n_items).astype(np.int64)

    def liked(self, inter: Interactions) -> np.ndarray:
        """Which of ``inter`` the user liked: rated 4 or more, or (implicit feedback,
        no ratings) every interaction."""
        if not self.has_ratings:
            return np.ones(len(inter), dtype=bool)
        return inter.rating >= 4

    def with_interactions(self, inter: Interactions) -> Dataset:
        return Dataset(self.name, self.catalog, self.user_ids, inter, self.user_attrs,
                       self.item_vectors, self.source, self.has_ratings)
