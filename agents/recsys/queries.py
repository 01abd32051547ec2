"""Search queries from a user's history, retrieval with the catalogue's search tools, and
fusion of the retrieval scores over queries (GPT4Rec style), as plain code.

``rules_queries`` is the deterministic control: the user's top liked genres as one query,
then the titles of their most recent likes. ``retrieve`` runs each query through BM25
(``tools/search.py``, the index ``search_catalog`` uses) or the vector index
(``semantic_search``'s) and ``fuse`` turns the hits into one score per candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agents.library import Library
from agents.recsys.rationale import liked, top_genres
from scenarios.recsys import RetrievalConfig
from tools.dataset import Catalog
from tools.history import Rating

__all__ = ["RRF_K", "fuse", "retrieve", "rules_queries"]

RRF_K = 60  # reciprocal-rank fusion's constant (Cormack et al.)


def rules_queries(cat: Catalog, past: Sequence[Rating], n: int) -> list[str]:
    """Top liked genres (one query), then titles of the most recent likes; at most ``n``."""
    likes = liked(past)
    out: list[str] = []
    genres = top_genres(cat, past, 3)
    if genres:
        out.append(" ".join(genres))
    for i in dict.fromkeys(r.item for r in reversed(likes)):
        if len(out) >= n:
            break
        out.append(cat.titles[i])
    return out[:n]


def retrieve(lib: Library, queries: Sequence[str], cfg: RetrievalConfig
             ) -> list[list[tuple[int, float]]]:
    """Per query, the ``cfg.depth`` best catalogue items as (item, score), best first."""
    out: list[list[tuple[int, float]]] = []
    if cfg.search == "vector":
        index = {x: i for i, x in enumerate(lib.world.catalog.item_ids)}
        vec = lib.vectors()
        for q in queries:
            out.append([(index[x], s) for x, s in vec.search(q, cfg.depth) if x in index])
        return out
    bm25 = lib.bm25()
    return [bm25.search(q, cfg.depth) for q in queries]


def fuse(candidates: Sequence[int], hits: Sequence[Sequence[tuple[int, float]]],
         fusion: str) -> np.ndarray:
    """One score per candidate: ``rrf`` sums 1 / (RRF_K + rank) over the queries that
    retrieved it; ``score`` sums its score over each query's best. Not retrieved: 0."""
    pos = {c: j for j, c in enumerate(candidates)}
    s = np.zeros(len(candidates))
    for h in hits:
        best = max((x for _, x in h), default=0.0) or 1.0
        for rank, (item, score) in enumerate(h, start=1):
            j = pos.get(item)
            if j is not None:
                s[j] += 1.0 / (RRF_K + rank) if fusion == "rrf" else score / best
    return s
