"""The catalogue beside a trace (``items.jsonl``): item id, title, year and genres.

Traces name items by id; the run folder keeps the catalogue so that every view and export
can show titles without the data folder. Runs made before ``items.jsonl`` existed get it
back from their recorded config (the synthetic world regenerated from its seed, or the
data folder named in the config or RECARENA_DATA), when that data is still there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tools.dataset import Catalog

__all__ = ["ITEMS_FILENAME", "Item", "catalog_items", "items_from_config", "read_items",
           "write_items"]

ITEMS_FILENAME = "items.jsonl"


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    year: str
    genres: tuple[str, ...]

    def label(self) -> str:
        """``Title (year)``, or the title alone."""
        return f"{self.title} ({self.year})" if self.year and self.year not in self.title \
            else self.title


def catalog_items(catalog: Catalog) -> Iterator[Item]:
    for i, iid in enumerate(catalog.item_ids):
        yield Item(iid, catalog.titles[i], catalog.years[i], tuple(catalog.genres[i]))


def write_items(path: Path, items: Iterable[Item]) -> None:
    """One JSON object per line: ``{"id", "title", "year", "genres"}``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps({"id": it.id, "title": it.title, "year": it.year,
                                "genres": list(it.genres)}, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_items(path: Path) -> list[Item]:
    out = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                out.append(Item(str(d["id"]), str(d.get("title", "")), str(d.get("year", "")),
                                tuple(str(g) for g in d.get("genres", ()))))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: not an item: {e}") from None
    return out


def items_from_config(run_start: dict[str, Any]) -> list[Item] | None:
    """The catalogue of an older run, rebuilt from its ``run_start`` config; None if the
    data is gone."""
    cfg = run_start.get("config") or {}
    ds_cfg = cfg.get("dataset") or {}
    try:
        if ds_cfg.get("source") == "synthetic":
            from tools.synthetic import make_world

            s = ds_cfg.get("synthetic") or {}
            ds = make_world(int(s.get("n_users", 300)), int(s.get("n_items", 400)),
                            int(s.get("n_genres", 10)), int(s.get("dim", 8)),
                            float(s.get("history_mean", 30.0)), seed=int(cfg.get("seed", 0)))
        else:
            from tools.dataset import load_dataset

            path = os.environ.get("RECARENA_DATA") or ds_cfg.get("path")
            if not path or not Path(path).is_dir():
                return None
            ds = load_dataset(path)
    except (ValueError, OSError, TypeError):
        return None
    if ds.n_items != run_start.get("n_items", ds.n_items):
        return None  # not the same catalogue
    return list(catalog_items(ds.catalog))
