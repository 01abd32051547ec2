"""Items as weighted tags, seeded from the catalogue and the knowledge graph.

The deterministic item-agent control (agents/items/control.py) describes users and items
as weighted tags: an item's genres and decade, and the knowledge-graph entities it is
linked to under chosen relations (its director, its actors). An entity only one movie
has says nothing about who else would like it, so only entities linked to at least two
items become tags, the most shared first.

A tag vector is a plain ``dict[str, float]``; :func:`cosine`, :func:`add` and :func:`top`
are the few operations the update rules need. Text for prompts comes from
:func:`describe_tags` (knowledge-graph entities have no names in the files: they read as
"shares its director with TITLE").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from tools.data_model import Catalog
from tools.kg import KnowledgeGraph

__all__ = ["Tags", "add", "cosine", "describe_tags", "item_tags", "normalised", "top"]

Tags = dict[str, float]

_SHORT = {"film.film.directed_by": "director", "film.film.actor": "actor"}


def _short(relation: str) -> str:
    return _SHORT.get(relation, relation.rsplit(".", 1)[-1])


def item_tags(catalog: Catalog, kg: KnowledgeGraph | None, *, genres: bool = True,
              relations: Sequence[str] = (), kg_max: int = 3) -> list[Tags]:
    """Per item: ``genre:G`` and ``decade:D`` (weight 1 and 0.5) and up to ``kg_max``
    shared entities per relation as ``REL:ENTITY`` (weight 1)."""
    out: list[Tags] = []
    want = {kg.relation(r): _short(r) for r in relations} if kg is not None else {}
    shared: dict[str, int] = {}
    for i in range(catalog.n_items):
        t: Tags = {}
        if genres:
            t.update({f"genre:{g}": 1.0 for g in catalog.genres[i]})
            year = catalog.years[i][:4]
            if year.isdigit():
                t[f"decade:{year[:3]}0s"] = 0.5
        if kg is not None and want and kg_max > 0:
            node = kg.node(catalog.item_ids[i])
            found: dict[str, list[str]] = {}
            for m, d in (kg.graph[node].items() if node is not None else ()):
                for _head, r in d["facts"]:
                    if r in want and m not in kg.item_of:
                        found.setdefault(want[r], []).append(m)
            for rel, ents in found.items():
                for e in ents:
                    if e not in shared:
                        shared[e] = kg.n_items_linked(e)
                best = sorted((e for e in set(ents) if shared[e] >= 2),
                              key=lambda e: (-shared[e], e))[:kg_max]
                t.update({f"{rel}:{e}": 1.0 for e in best})
        out.append(t)
    return out


def normalised(t: Mapping[str, float]) -> Tags:
    """``t`` with unit L2 norm (empty stays empty)."""
    n = math.sqrt(sum(v * v for v in t.values()))
    return {k: v / n for k, v in t.items()} if n > 0 else {}


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Cosine similarity of two tag vectors (0 when either is empty)."""
    if len(a) > len(b):
        a, b = b, a
    dot = sum(v * b.get(k, 0.0) for k, v in a.items())
    if dot == 0.0:
        return 0.0
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb)


def add(into: Tags, other: Mapping[str, float], weight: float) -> None:
    """``into += weight * other`` in place; weights that fall to 0 or below are dropped."""
    for k, v in other.items():
        w = into.get(k, 0.0) + weight * v
        if w > 1e-9:
            into[k] = w
        else:
            into.pop(k, None)


def top(t: Mapping[str, float], keep: int) -> Tags:
    """The ``keep`` heaviest tags (ties: by name), as a short description keeps them."""
    if len(t) <= keep:
        return dict(t)
    best = sorted(t.items(), key=lambda kv: (-kv[1], kv[0]))[:keep]
    return dict(best)


def describe_tags(t: Mapping[str, float], catalog: Catalog | None = None,
                  kg: KnowledgeGraph | None = None, n: int = 6) -> str:
    """The heaviest ``n`` tags in words: ``Sci-Fi, Action, 1970s, a shared director``."""
    words: list[str] = []
    for tag, _ in sorted(t.items(), key=lambda kv: (-kv[1], kv[0]))[:n]:
        kind, _, value = tag.partition(":")
        if kind in ("genre", "decade"):
            words.append(value)
            continue
        title = _a_title(value, catalog, kg)
        words.append(f"the {kind} of {title}" if title else f"a {kind} ({value})")
    # Two actors of one film read the same: say it once.
    return ", ".join(dict.fromkeys(words))


def _a_title(entity: str, catalog: Catalog | None, kg: KnowledgeGraph | None) -> str | None:
    """A title linked to ``entity`` (the lowest item id), to name an unnamed entity."""
    if catalog is None or kg is None or entity not in kg.graph:
        return None
    ids: Iterable[str] = (kg.item_of[m] for m in kg.graph[entity] if m in kg.item_of)
    known = sorted(catalog.index[i] for i in ids if i in catalog.index)
    return catalog.titles[known[0]] if known else None
