"""Item look-ups an agent's tools are made of: facts about one item, its neighbours.

Plain functions over the catalogue and item embeddings; :mod:`agents.toolbox` wraps them
as LangChain tools (whose docstrings are what a model sees).
"""

from __future__ import annotations

import numpy as np

from tools.dataset import Catalog

__all__ = ["find_item", "item_facts", "similar_items"]


def find_item(catalog: Catalog, ref: str) -> int | None:
    """An item by catalogue id, or by (case-insensitive) title, or None."""
    ref = ref.strip().strip("'\"")
    if ref in catalog.index:
        return catalog.index[ref]
    low = ref.lower()
    for i, t in enumerate(catalog.titles):
        if t.lower() == low:
            return i
    for i, t in enumerate(catalog.titles):
        if low and low in t.lower():
            return i
    return None


def item_facts(catalog: Catalog, item: int, mean_rating: float, popularity: int) -> str:
    year = catalog.years[item]
    return (f"{catalog.item_ids[item]}: {catalog.titles[item]}"
            f"{f' ({year})' if year else ''}; genres {', '.join(catalog.genres[item]) or '-'}; "
            f"mean rating {mean_rating:.2f}/5 from {popularity} ratings. "
            f"{catalog.descriptions[item]}")


def similar_items(catalog: Catalog, embeddings: np.ndarray, item: int, n: int = 5) -> list[int]:
    """The ``n`` items closest to ``item`` (cosine of unit embeddings), best first."""
    sims = embeddings @ embeddings[item]
    sims[item] = -np.inf
    return [int(i) for i in np.argsort(-sims, kind="stable")[:n]]
