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
from pathlib import Path

import numpy as np

from tools.csv_data import load_csv
from tools.data_model import Catalog, DataError, Dataset, Interactions, default_description

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



# ----------------------------------------------------------------------------- loading


def load_dataset(path: str | Path) -> Dataset:
    """Load a dataset folder in RecBole atomic or GroupLens ml-100k layout, or one CSV
    file with default column names (tools/csv_data.py)."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: no such data folder")
    if root.is_file() and root.suffix.lower() in (".csv", ".tsv"):
        return load_csv(root)
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
