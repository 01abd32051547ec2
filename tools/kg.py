"""A knowledge graph over a dataset's items: RecBole ``NAME.kg`` triples and ``NAME.link``.

MovieLens 100K ships Freebase facts about its movies (``head_id relation_id tail_id``, e.g.
``m.0c3wmn film.film.actor m.02vxxgs``) and a link file from dataset item ids to Freebase
entities. Entities other than movies have no names in these files, only Freebase ids.

The files state most facts twice, once per direction (``film.film.directed_by`` and
``film.director.film``). Inverse relations are found from the data (a relation whose
triples mostly reappear reversed under one other relation) and folded: the graph keeps one
edge per fact, under the relation with more triples, and a query may name either one.

One undirected networkx graph (through tools/graphs.py) holds the facts; each edge keeps its
``(head, relation)`` pairs, so a fact reads in the right direction from either end.
Paths prefer specific connections: passing through an entity costs ``log(1 + degree)``,
so a shared actor beats the genre "Drama" that hundreds of movies share.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tools.dataset import DataError
from tools.graphs import Graph, graph_from_edges, shortest_path

__all__ = [
    "ACTOR",
    "DIRECTOR",
    "Hop",
    "KGError",
    "KnowledgeGraph",
    "Neighbour",
    "Shared",
    "kg_files",
    "load_kg",
    "neighbours",
    "paths",
    "sharing",
]

ACTOR = "film.film.actor"
DIRECTOR = "film.film.directed_by"


class KGError(DataError):
    """Knowledge-graph files are malformed, or a query names something the graph lacks."""


@dataclass(frozen=True)
class Neighbour:
    """One fact seen from an entity: ``relation`` as read from that entity's side.

    Attributes:
        relation: The relation, as named in the files for this direction when the files
            name it (``film.film.actor`` from a movie, ``film.actor.film`` from an actor);
            ``^name`` for the reverse of a relation the files never state backwards.
        entity: The Freebase id at the other end.
        item: The dataset item id of that entity when it is a linked item, else None.
    """

    relation: str
    entity: str
    item: str | None


@dataclass(frozen=True)
class Hop:
    """One step of a path: from ``source`` to ``target`` along ``relations``."""

    source: str
    target: str
    relations: tuple[str, ...]
    target_item: str | None


@dataclass(frozen=True)
class Shared:
    """An item sharing people (or anything) with the queried one: which, and how."""

    item: str
    via: tuple[tuple[str, str], ...]  # (relation, entity), e.g. (film.film.actor, m.0x...)


@dataclass(eq=False)
class KnowledgeGraph:
    """Facts about a dataset's items; build it with :func:`load_kg`.

    Attributes:
        graph: Undirected; edge attribute ``facts`` is a tuple of (head, relation).
        entity_of: Dataset item id -> entity id (linked items only).
        item_of: Entity id -> dataset item id.
        inverse: Each relation -> its inverse name (both ways), for pairs found in the data.
        relations: The relations edges are stored under (inverse duplicates folded).
        file_relations: Every relation name in the triples file.
        n_triples: Lines of the triples file (before folding duplicates).
    """

    graph: Graph
    entity_of: dict[str, str]
    item_of: dict[str, str]
    inverse: dict[str, str]
    relations: tuple[str, ...]
    file_relations: tuple[str, ...]
    n_triples: int
    source: str = ""
    cost: dict[str, float] = field(init=False, repr=False)  # log(1 + degree) per node

    def __post_init__(self) -> None:
        self.cost = {n: math.log1p(d) for n, d in self.graph.degree()}

    @property
    def n_nodes(self) -> int:
        return int(self.graph.number_of_nodes())

    @property
    def n_facts(self) -> int:
        """Distinct facts (a fact stated in both directions counts once)."""
        return sum(len(d["facts"]) for _, _, d in self.graph.edges(data=True))

    def node(self, ref: str) -> str | None:
        """The entity for a dataset item id or a Freebase id; None if the graph lacks it."""
        ref = ref.strip()
        ent = self.entity_of.get(ref)
        if ent is not None:
            return ent if ent in self.graph else None
        return ref if ref in self.graph else None

    def relation(self, name: str) -> str:
        """The stored relation for a full name (either direction) or one dotted part of it
        (``actor``, ``director``, ``directed_by``, ``genre``).

        Raises:
            KGError: No relation, or several, answer to ``name``.
        """
        name = name.strip()
        stored = set(self.relations)
        if name in stored:
            return name
        if name in self.inverse and self.inverse[name] in stored:
            return self.inverse[name]
        hits = {r if r in stored else self.inverse[r] for r in (*stored, *self.inverse)
                if name and name in r.split(".") and (r in stored or self.inverse[r] in stored)}
        if len(hits) == 1:
            return hits.pop()
        known = ", ".join(self.relations)
        what = "is ambiguous" if hits else "is not a relation of this graph"
        raise KGError(f"relation {name!r} {what}; relations: {known}")

    def label(self, head: str, relation: str, seen_from: str) -> str:
        """``relation`` as read from ``seen_from``'s end of the fact."""
        if seen_from == head:
            return relation
        return self.inverse.get(relation, f"^{relation}")

    def degree(self, entity: str) -> int:
        return int(self.graph.degree(entity))

    def n_items_linked(self, entity: str) -> int:
        """How many dataset items the entity is directly connected to."""
        return sum(1 for m in self.graph[entity] if m in self.item_of)


# ----------------------------------------------------------------------------- loading


def kg_files(folder: str | Path, name: str) -> tuple[Path, Path] | None:
    """``(NAME.kg, NAME.link)`` in ``folder`` if both exist, else None."""
    root = Path(folder)
    kg, link = root / f"{name}.kg", root / f"{name}.link"
    return (kg, link) if kg.is_file() and link.is_file() else None


def _rows(path: Path, fields: Sequence[str]) -> Iterable[tuple[int, list[str]]]:
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        names = [h.split(":", 1)[0] for h in header]
        if names != list(fields):
            raise KGError(f"{path}:1: header: expected fields {', '.join(fields)}, "
                          f"found {', '.join(names) or 'none'}")
        for lineno, line in enumerate(f, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) != len(fields) or not all(parts):
                raise KGError(f"{path}:{lineno}: expected {len(fields)} non-empty "
                              f"tab-separated fields ({', '.join(fields)}), found {line!r}")
            yield lineno, parts


def _folded(triples: Sequence[tuple[str, str, str]], items: Container[str]) -> dict[str, str]:
    """Relations that restate another one backwards: {redundant: kept}.

    ``a`` restates ``b`` when at least half of a's triples ``(h, a, t)`` reappear as
    ``(t, b, h)`` and b is the relation they reappear under most. Of the two, the one
    kept is read from the item's side (more triples with a linked item as head; then
    more triples; then the name that sorts last), so a movie's facts read forwards.
    """
    count = Counter(r for _, r, _ in triples)
    from_item = Counter(r for h, r, _ in triples if h in items)

    def rank(r: str) -> tuple[int, int, str]:
        return from_item[r], count[r], r

    at: dict[tuple[str, str], list[str]] = defaultdict(list)
    for h, r, t in triples:
        at[(h, t)].append(r)
    co: Counter[tuple[str, str]] = Counter()
    for h, r, t in triples:
        for r2 in at.get((t, h), ()):
            if r2 != r:
                co[(r, r2)] += 1
    best: dict[str, tuple[int, str]] = {}
    for (a, b), n in co.items():
        if (n, b) > best.get(a, (0, "")):
            best[a] = (n, b)
    folded: dict[str, str] = {}
    for a in sorted(count, key=rank):
        n, b = best.get(a, (0, ""))
        if not b or 2 * n < count[a] or a in folded.values() or b in folded:
            continue
        if rank(a) > rank(b):
            continue  # b is folded into a when its turn comes
        folded[a] = b
    return folded


def load_kg(kg_path: str | Path, link_path: str | Path) -> KnowledgeGraph:
    """Load (once per process and file version) the graph of ``kg_path`` + ``link_path``.

    Raises:
        KGError: A file is missing or malformed; the message names file and line.
    """
    kp, lp = Path(kg_path).resolve(), Path(link_path).resolve()
    for p in (kp, lp):
        if not p.is_file():
            raise KGError(f"{p}: no such knowledge-graph file")
    ks, ls = kp.stat(), lp.stat()
    return _load(str(kp), str(lp), ks.st_mtime_ns, ks.st_size, ls.st_mtime_ns, ls.st_size)


@cache
def _load(kg_path: str, link_path: str, *_version: int) -> KnowledgeGraph:
    kp, lp = Path(kg_path), Path(link_path)
    entity_of: dict[str, str] = {}
    item_of: dict[str, str] = {}
    for lineno, (item, ent) in _rows(lp, ("item_id", "entity_id")):
        if item in entity_of or ent in item_of:
            raise KGError(f"{lp}:{lineno}: item {item} or entity {ent} is linked twice")
        entity_of[item], item_of[ent] = ent, item
    triples = [(h, r, t) for _, (h, r, t) in _rows(kp, ("head_id", "relation_id", "tail_id"))]
    folded = _folded(triples, item_of)
    inverse = {**folded, **{b: a for a, b in folded.items()}}
    facts: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for h, r, t in triples:
        if r in folded:
            h, r, t = t, folded[r], h
        facts[(h, t) if h <= t else (t, h)].add((h, r))
    g = graph_from_edges((a, b, {"facts": tuple(sorted(f))}) for (a, b), f in facts.items())
    stored = sorted({r for f in facts.values() for _, r in f})
    return KnowledgeGraph(graph=g, entity_of=entity_of, item_of=item_of, inverse=inverse,
                          relations=tuple(stored),
                          file_relations=tuple(sorted({r for _, r, _ in triples})),
                          n_triples=len(triples), source=kg_path)


# ----------------------------------------------------------------------------- queries


def _node(kg: KnowledgeGraph, ref: str) -> str:
    n = kg.node(ref)
    if n is None:
        raise KGError(f"{ref!r} is neither a linked item id nor an entity of the graph")
    return n


def neighbours(kg: KnowledgeGraph, ref: str, relation: str | None = None) -> list[Neighbour]:
    """What ``ref`` (a dataset item id or a Freebase id) is directly connected to.

    Sorted by relation, then linked items before other entities, then id. ``relation``
    (any name :meth:`KnowledgeGraph.relation` accepts) keeps only that relation.

    Raises:
        KGError: ``ref`` or ``relation`` is unknown.
    """
    n = _node(kg, ref)
    want = kg.relation(relation) if relation else None
    out = []
    for m, d in kg.graph[n].items():
        for head, r in d["facts"]:
            if want is None or r == want:
                out.append(Neighbour(kg.label(head, r, n), m, kg.item_of.get(m)))
    out.sort(key=lambda x: (x.relation, x.item is None, _natural(x.item or x.entity)))
    return out


def _natural(s: str) -> tuple[int, int, str]:
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def paths(kg: KnowledgeGraph, source: str, target: str, k: int = 3, max_hops: int = 4,
          relations: Sequence[str] | None = None) -> list[list[Hop]]:
    """Up to ``k`` ways ``source`` and ``target`` are connected, most specific first.

    Each path is the cheapest one (passing an entity costs ``log(1 + degree)``) that
    shares no intermediate entity with the paths before it, so the answers are different
    connections. The search stops at the first path longer than ``max_hops`` hops.
    ``relations`` restricts the edges used.

    Raises:
        KGError: An endpoint or a relation is unknown.
    """
    a, b = _node(kg, source), _node(kg, target)
    allowed = {kg.relation(r) for r in relations} if relations else None
    if a == b or k <= 0:
        return []
    banned: set[str] = set()
    banned_edges: set[tuple[str, str]] = set()
    cost = kg.cost

    def weight(u: str, v: str, d: dict[str, Any]) -> float | None:
        if u in banned or v in banned or (u, v) in banned_edges:
            return None
        if allowed is not None and not any(r in allowed for _, r in d["facts"]):
            return None
        return (cost[u] + cost[v]) / 2.0

    out: list[list[Hop]] = []
    while len(out) < k:
        nodes = shortest_path(kg.graph, a, b, weight)
        if nodes is None:
            break
        if len(nodes) - 1 > max_hops:
            break
        hops = []
        for u, v in itertools.pairwise(nodes):
            rels = kg.graph[u][v]["facts"]
            keep = [(h, r) for h, r in rels if allowed is None or r in allowed]
            hops.append(Hop(u, v, tuple(kg.label(h, r, u) for h, r in keep), kg.item_of.get(v)))
        out.append(hops)
        inner = nodes[1:-1]
        if inner:
            banned.update(inner)
        else:  # directly linked: the next answer must go another way
            banned_edges.update({(a, b), (b, a)})
    return out


def sharing(kg: KnowledgeGraph, ref: str, relations: Sequence[str] = (ACTOR, DIRECTOR),
            k: int = 10) -> list[Shared]:
    """Linked items that share an entity with ``ref`` under the same relation, in the
    same role (another movie with one of its actors, or its director), most shared first.

    Raises:
        KGError: ``ref`` or a relation is unknown.
    """
    n = _node(kg, ref)
    want = {kg.relation(r) for r in relations}
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    g = kg.graph
    for p, d in g[n].items():
        for head, r in d["facts"]:
            if r not in want:
                continue
            forward = head == n
            for m, d2 in g[p].items():
                if m == n or m not in kg.item_of:
                    continue
                if any(r2 == r and (h2 == m) == forward for h2, r2 in d2["facts"]):
                    found[kg.item_of[m]].append((kg.label(head, r, n), p))
    ranked = sorted(found.items(), key=lambda kv: (-len(kv[1]), _natural(kv[0])))
    return [Shared(item, tuple(sorted(via))) for item, via in ranked[:max(k, 0)]]
