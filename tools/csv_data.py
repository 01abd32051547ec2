"""Your own interactions as one plain CSV file: user, item, optional rating and timestamp.

Column names are mapped (``columns``); the delimiter is sniffed from the first lines
(comma, semicolon, tab or pipe) unless given. Without a rating column the data is
implicit feedback: every interaction counts as 1.0 and ``Dataset.has_ratings`` is False,
so rating figures say "n/a". Without a timestamp column, file order is time order.
Items are the ones the file mentions, titled by their id, with no genres.
See docs/data.md.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from tools.data_model import Catalog, DataError, Dataset, Interactions

__all__ = ["CSV_COLUMNS", "load_csv", "sniff_delimiter"]

# Role -> default column name; user and item are required, the others optional.
CSV_COLUMNS: dict[str, str] = {"user": "user", "item": "item", "rating": "rating",
                               "timestamp": "timestamp"}
_DELIMITERS = ",;\t|"


def sniff_delimiter(path: Path, sample: str) -> str:
    """The delimiter of ``sample`` (the file's first lines), else a ``DataError``."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        found = [d for d in _DELIMITERS if d in header]
        if len(found) == 1:
            return found[0]
        raise DataError(f"{path}:1: cannot tell the delimiter (tried {_DELIMITERS!r}); "
                        "set dataset.delimiter") from None


def _time(path: Path, line: int, col: str, text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        try:
            return datetime.fromisoformat(text.strip()).timestamp()
        except ValueError:
            raise DataError(f"{path}:{line}: column {col!r}: not a number or ISO date: "
                            f"{text!r}") from None
    if not math.isfinite(v):
        raise DataError(f"{path}:{line}: column {col!r}: not a finite number: {text!r}")
    return v


def load_csv(path: str | Path, columns: Mapping[str, str | None] | None = None, *,
             delimiter: str | None = None, explicit: frozenset[str] = frozenset()) -> Dataset:
    """Load a CSV of interactions.

    Args:
        path: The CSV file; its first line names the columns.
        columns: Role (user, item, rating, timestamp) -> column name; missing roles take
            ``CSV_COLUMNS``; None drops an optional role.
        delimiter: The field separator; None sniffs it.
        explicit: Roles the caller named: a missing column is then an error even for the
            optional rating and timestamp (a default name that is absent just drops them).

    Raises:
        DataError: ``FILE:LINE: column 'NAME': ...`` for a bad value, a short row or a
            missing column.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such CSV file")
    cols = {**CSV_COLUMNS, **(columns or {})}
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{p}:1: cannot read: {e}") from None
    if not text.strip():
        raise DataError(f"{p}:1: empty file, expected a header line naming the columns")
    sep = delimiter or sniff_delimiter(p, "\n".join(text.splitlines()[:20]))
    reader = csv.reader(text.splitlines(), delimiter=sep)
    header = [h.strip() for h in next(reader)]
    where: dict[str, int] = {}
    for role in ("user", "item", "rating", "timestamp"):
        name = cols.get(role)
        if name is None:
            continue
        if name in header:
            where[role] = header.index(name)
        elif role in ("user", "item") or role in explicit:
            raise DataError(f"{p}:1: column {name!r} ({role}) is not in the header "
                            f"({', '.join(header)}); map it with dataset.columns.{role}")
    ratings = "rating" in where
    rows: list[tuple[int, str, str, float, float]] = []
    item_order: dict[str, None] = {}
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{p}:{line}: expected {len(header)} {sep!r}-separated fields "
                            f"({', '.join(header)}), found {len(row)}")
        vals = {role: row[i].strip() for role, i in where.items()}
        for role in ("user", "item"):
            if not vals[role]:
                raise DataError(f"{p}:{line}: column {cols[role]!r}: empty {role} id")
        r = 1.0
        if ratings:
            try:
                r = float(vals["rating"])
            except ValueError:
                raise DataError(f"{p}:{line}: column {cols['rating']!r}: not a number: "
                                f"{vals['rating']!r}") from None
            if not math.isfinite(r):
                raise DataError(f"{p}:{line}: column {cols['rating']!r}: not a finite "
                                f"number: {vals['rating']!r}")
        t = (_time(p, line, str(cols["timestamp"]), vals["timestamp"])
             if "timestamp" in where else float(line))
        rows.append((line, vals["user"], vals["item"], r, t))
        item_order.setdefault(vals["item"], None)
    if not rows:
        raise DataError(f"{p}:2: no interactions below the header")
    items = tuple(item_order)
    catalog = Catalog(items, items, tuple(() for _ in items))
    index = catalog.index
    users = sorted({r[1] for r in rows}, key=lambda s: (len(s), s) if s.isdigit() else (0, s))
    uindex = {u: i for i, u in enumerate(users)}
    inter = Interactions.from_lists([uindex[r[1]] for r in rows], [index[r[2]] for r in rows],
                                    [r[3] for r in rows], [r[4] for r in rows])
    return Dataset(name=p.stem, catalog=catalog, user_ids=tuple(users), interactions=inter,
                   user_attrs=tuple({} for _ in users), source=p.parent, has_ratings=ratings)
