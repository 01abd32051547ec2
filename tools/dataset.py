"""Datasets: a catalogue, users and their rated interactions.

Two on-disk layouts are read:

* RecBole atomic files (``NAME.inter``, ``NAME.item``, optional ``NAME.user``) whose first
  line is a ``field:type`` header, tab separated;
* the original GroupLens ``ml-100k`` folder (``u.data``, ``u.item``, ``u.user``).

Users and items are re-indexed to dense integers in first-seen order of the catalogue
(items) and sorted external id order (users), so that every run on the same files sees the
same indices.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

# The splits live in tools/splits.py; re-exported here, where callers have always found them.
from tools.splits import (
    SPLIT_KINDS,
    SplitKind,
    global_cutoff,
    global_split,
    leave_last_out,
    rolling_cutoffs,
    split_at,
    split_interactions,
    temporal_split,
)

__all__ = [
    "SPLIT_KINDS",
    "Catalog",
    "DataError",
    "Dataset",
    "Interactions",
    "SplitKind",
    "default_description",
    "global_cutoff",
    "global_split",
    "leave_last_out",
    "load_dataset",
    "newest_items",
    "rolling_cutoffs",
    "split_at",
    "split_interactions",
    "temporal_split",
]


GROUPLENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)


class DataError(ValueError):
    """A data file is missing or malformed; the message names file and line."""


def default_description(title: str, year: str, genres: Sequence[str]) -> str:
    """What an item without a description is described as: its title, year and genres."""
    kinds = ", ".join(genres) or "unclassified"
    return f"{title} ({year}), {kinds}." if year else f"{title}, {kinds}."


@dataclass(frozen=True, eq=False)
class Catalog:
    """Items with their descriptive fields, indexed 0..n_items-1."""

    item_ids: tuple[str, ...]
    titles: tuple[str, ...]
    genres: tuple[tuple[str, ...], ...]
    years: tuple[str, ...] = ()
    descriptions: tuple[str, ...] = ()

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

    def with_interactions(self, inter: Interactions) -> Dataset:
        return Dataset(self.name, self.catalog, self.user_ids, inter, self.user_attrs,
                       self.item_vectors, self.source)


# ----------------------------------------------------------------------------- loading


def load_dataset(path: str | Path) -> Dataset:
    """Load a dataset folder in RecBole atomic or GroupLens ml-100k layout."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: no such data folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    inter_files = sorted(root.glob("*.inter"))
    if inter_files:
        return _load_atomic(root, inter_files[0].stem)
    if (root / "u.data").exists():
        return _load_grouplens(root)
    nested = root / "ml-100k"
    if nested.is_dir():
        return load_dataset(nested)
    raise DataError(
        f"{root}: no dataset found (expected NAME.inter/.item atomic files or u.data/u.item)"
    )


def _read_atomic(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header field names and (line number, fields) rows of one atomic file."""
    rows: list[tuple[int, list[str]]] = []
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        header_line = f.readline().rstrip("\r\n")
        if not header_line:
            raise DataError(f"{path}:1: empty file, expected a 'name:type' header")
        names = [h.split(":", 1)[0] for h in header_line.split("\t")]
        for lineno, line in enumerate(f, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) != len(names):
                raise DataError(
                    f"{path}:{lineno}: expected {len(names)} tab-separated fields "
                    f"({', '.join(names)}), found {len(parts)}"
                )
            rows.append((lineno, parts))
    return names, rows


def _col(path: Path, names: list[str], wanted: str, *alts: str) -> int:
    for n in (wanted, *alts):
        if n in names:
            return names.index(n)
    raise DataError(f"{path}:1: header has no '{wanted}' field (found {', '.join(names)})")


def _to_float(path: Path, lineno: int, field_name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{path}:{lineno}: {field_name}: not a number: {text!r}") from None


def _load_atomic(root: Path, stem: str) -> Dataset:
    item_path = root / f"{stem}.item"
    inter_path = root / f"{stem}.inter"
    user_path = root / f"{stem}.user"
    if not item_path.exists():
        raise DataError(f"{item_path}: missing (atomic datasets need NAME.item beside NAME.inter)")
    names, rows = _read_atomic(item_path)
    c_id = _col(item_path, names, "item_id")
    c_title = _col(item_path, names, "movie_title", "title", "name")
    c_year = names.index("release_year") if "release_year" in names else None
    c_cls = _col(item_path, names, "class", "genre", "genres")
    catalog = Catalog(
        item_ids=tuple(r[c_id] for _, r in rows),
        titles=tuple(r[c_title] for _, r in rows),
        genres=tuple(tuple(r[c_cls].split()) for _, r in rows),
        years=tuple(r[c_year] for _, r in rows) if c_year is not None else (),
    )
    user_attrs: dict[str, dict[str, str]] = {}
    if user_path.exists():
        unames, urows = _read_atomic(user_path)
        cu = _col(user_path, unames, "user_id")
        for _, r in urows:
            user_attrs[r[cu]] = {k: v for k, v in zip(unames, r, strict=True) if k != "user_id"}
    inames, irows = _read_atomic(inter_path)
    cu, ci = _col(inter_path, inames, "user_id"), _col(inter_path, inames, "item_id")
    cr = _col(inter_path, inames, "rating")
    ct = _col(inter_path, inames, "timestamp")
    triples = [
        (ln, r[cu], r[ci], _to_float(inter_path, ln, "rating", r[cr]),
         _to_float(inter_path, ln, "timestamp", r[ct]))
        for ln, r in irows
    ]
    return _assemble(stem, catalog, triples, user_attrs, inter_path)


def _load_grouplens(root: Path) -> Dataset:
    item_path, data_path, user_path = root / "u.item", root / "u.data", root / "u.user"
    if not item_path.exists():
        raise DataError(f"{item_path}: missing (GroupLens folders need u.item beside u.data)")
    ids, titles, years, genres = [], [], [], []
    with item_path.open(encoding="latin-1") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split("|")
            if len(parts) != 5 + len(GROUPLENS_GENRES):
                raise DataError(
                    f"{item_path}:{lineno}: expected {5 + len(GROUPLENS_GENRES)} '|'-separated "
                    f"fields, found {len(parts)}"
                )
            title = parts[1]
            year = ""
            if title.endswith(")") and "(" in title:
                head, _, tail = title.rpartition("(")
                if tail[:-1].isdigit():
                    title, year = head.strip(), tail[:-1]
            flags = parts[5:]
            ids.append(parts[0])
            titles.append(title)
            years.append(year)
            genres.append(tuple(g for g, on in zip(GROUPLENS_GENRES, flags, strict=True)
                                if on == "1" and g != "unknown"))
    catalog = Catalog(tuple(ids), tuple(titles), tuple(genres), tuple(years))
    user_attrs: dict[str, dict[str, str]] = {}
    if user_path.exists():
        with user_path.open(encoding="latin-1") as f:
            for line in f:
                p = line.rstrip("\r\n").split("|")
                if len(p) == 5:
                    user_attrs[p[0]] = {
                        "age": p[1], "gender": p[2], "occupation": p[3], "zip_code": p[4]
                    }
    triples = []
    with data_path.open(encoding="latin-1") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if not row:
                continue
            if len(row) != 4:
                raise DataError(f"{data_path}:{lineno}: expected 4 tab-separated fields, "
                                f"found {len(row)}")
            triples.append((lineno, row[0], row[1],
                            _to_float(data_path, lineno, "rating", row[2]),
                            _to_float(data_path, lineno, "timestamp", row[3])))
    return _assemble("ml-100k", catalog, triples, user_attrs, data_path)


def _assemble(
    name: str,
    catalog: Catalog,
    rows: list[tuple[int, str, str, float, float]],
    user_attrs: dict[str, dict[str, str]],
    inter_path: Path,
) -> Dataset:
    index = catalog.index
    user_set = sorted({r[1] for r in rows}, key=lambda s: (len(s), s) if s.isdigit() else (0, s))
    uindex = {u: i for i, u in enumerate(user_set)}
    users, items, ratings, ts = [], [], [], []
    for lineno, u, i, r, t in rows:
        if i not in index:
            raise DataError(f"{inter_path}:{lineno}: item_id: {i!r} is not in the item file")
        users.append(uindex[u])
        items.append(index[i])
        ratings.append(r)
        ts.append(t)
    return Dataset(
        name=name,
        catalog=catalog,
        user_ids=tuple(user_set),
        interactions=Interactions.from_lists(users, items, ratings, ts),
        user_attrs=tuple(user_attrs.get(u, {}) for u in user_set),
        source=inter_path.parent,
    )


# ----------------------------------------------------------------------------- releases


def _year(text: str) -> float:
    head = text.strip()[:4]
    return float(head) if len(head) == 4 and head.isdigit() else -np.inf


def newest_items(dataset: Dataset, count: int) -> np.ndarray:
    """The ``count`` most recently released items, oldest of them first.

    Release order is the catalogue's release year, then (within a year, or for data
    without years) the time of the item's first interaction: a film first rated later
    reached the platform later. Items nobody rated count as newest of their year; ties
    go to the higher index. Unknown years count as oldest.
    """
    if not 0 <= count <= dataset.n_items:
        raise ValueError(f"count must be in 0..{dataset.n_items}, got {count}")
    inter = dataset.interactions
    first = np.full(dataset.n_items, np.inf)
    np.minimum.at(first, inter.item, inter.ts)
    years = np.array([_year(y) for y in dataset.catalog.years], dtype=np.float64)
    # lexsort: last key is primary; ascending, so the newest items come last.
    order = np.lexsort((np.arange(dataset.n_items), first, years))
    return order[dataset.n_items - count:].astype(np.int64)
