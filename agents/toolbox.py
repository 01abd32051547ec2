"""Agents' tools, as LangChain tools: what a planner (or a tool-calling model) may call.

Each tool is a small function whose docstring is what the model sees (its first line is
the one-line summary planners list). Catalogue tools read the world's :class:`Library`;
user tools are bound to one user and to the simulation clock: they show only what that
user did before now (the library's past, cut at ``before``, plus this run's own ratings),
never the held-out future.

| tool | reads | module |
| --- | --- | --- |
| item_info, similar_items | catalogue, item embeddings | tools/lookup.py |
| search_catalog | BM25 over item texts | tools/search.py |
| semantic_search | chromadb item index | memory/item_index.py |
| kg_neighbours, kg_paths, kg_shared | knowledge graph | tools/kg.py |
| user_profile, user_history | the user's past | tools/history.py |
| candidates | a classic model fit on the past | tools/candidates.py |
| search_memory, read_shared | the agent's memory | agents/group.py |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from langchain_core.tools import BaseTool, StructuredTool

from agents.library import Library
from tools.dataset import Catalog
from tools.history import Rating, describe_user, history_lines
from tools.kg import ACTOR, DIRECTOR, KGError, KnowledgeGraph, neighbours, paths, sharing
from tools.lookup import find_item, item_facts, similar_items

__all__ = ["CATALOGUE_TOOLS", "KG_TOOLS", "MEMORY_TOOLS", "USER_TOOLS", "AgentMemory",
           "build_tools", "make_tools", "offered"]

KG_TOOLS = ("kg_neighbours", "kg_paths", "kg_shared")
CATALOGUE_TOOLS = ("item_info", "similar_items", "search_catalog", "semantic_search",
                   *KG_TOOLS)
USER_TOOLS = ("user_profile", "user_history", "candidates")
MEMORY_TOOLS = ("search_memory", "read_shared")

_PER_RELATION = 8  # entities listed per relation before "... and N more"


def _count(v: object, default: int) -> int:
    """A count from a model: LangChain passes a lone string argument through unconverted."""
    try:
        return max(0, int(str(v).strip()))
    except ValueError:
        return default


def _line(cat: Catalog, i: int) -> str:
    year = cat.years[i]
    title = f"{cat.titles[i]} ({year})" if year else cat.titles[i]
    return f"{cat.item_ids[i]}: {title}, {', '.join(cat.genres[i]) or 'unclassified'}"


def _entity(kg: KnowledgeGraph, cat: Catalog, e: str) -> str:
    item = kg.item_of.get(e)
    if item is not None and item in cat.index:
        i = cat.index[item]
        year = cat.years[i]
        return f"{item}: {cat.titles[i]}" + (f" ({year})" if year else "")
    n = kg.n_items_linked(e)
    return f"{e} ({n} movie{'' if n == 1 else 's'})"


def _catalogue_tools(lib: Library) -> dict[str, Callable[..., str]]:
    world, cat = lib.world, lib.world.catalog

    def facts(i: int) -> str:
        return item_facts(cat, i, float(world.item_mean[i]), int(world.popularity[i]))

    def item_info(item: str) -> str:
        """item_info(item): facts about one movie, by id or title: year, genres, mean
        rating and number of ratings (before now), description."""
        i = find_item(cat, item)
        return facts(i) if i is not None else f"no item {item!r} in the catalogue"

    def similar(item: str, k: int = 5) -> str:
        """similar_items(item, k=5): the k movies most similar to one movie (by who
        watched them and their genres), by id or title."""
        i = find_item(cat, item)
        if i is None:
            return f"no item {item!r} in the catalogue"
        return "\n".join(facts(j) for j in similar_items(cat, world.embeddings, i,
                                                            _count(k, 5)))

    def search_catalog(query: str, k: int = 10) -> str:
        """search_catalog(query, k=10): movies whose title, year, genres or description
        contain the words of the query (BM25 keyword search), best first.

        Use it for names and exact words ("star trek", "1995 comedy", "noir").
        """
        hits = lib.bm25().search(query, _count(k, 10))
        return "\n".join(_line(cat, i) for i, _ in hits) or f"no movie matches {query!r}"

    def semantic_search(query: str, k: int = 10) -> str:
        """semantic_search(query, k=10): movies whose description is closest in meaning
        to the query (sentence embeddings), best first.

        Use it for themes and moods ("space adventure for kids", "dark crime drama").
        """
        hits = lib.vectors().search(query, _count(k, 10))
        return "\n".join(_line(cat, cat.index[i]) for i, _ in hits) or "no movies indexed"

    def graph_and_node(ref: str) -> tuple[KnowledgeGraph, str] | str:
        kg = lib.kg()
        if kg is None:
            return lib.no_kg
        ref = ref.strip().strip("'\"")
        if kg.node(ref) is not None and ref not in cat.index:
            return kg, ref  # a Freebase id from an earlier answer
        i = find_item(cat, ref)
        if i is None:
            return f"no item {ref!r} in the catalogue"
        node = kg.node(cat.item_ids[i])
        if node is None:
            return f"the knowledge graph has no facts about {_line(cat, i)}"
        return kg, cat.item_ids[i]

    def kg_neighbours(item: str, relation: str = "") -> str:
        """kg_neighbours(item, relation=""): knowledge-graph facts about a movie (by id
        or title) or an entity id (m.xxx): actors, director, writer, genre, awards...

        relation: optional, a relation name or part of it (actor, directed_by, genre,
        written_by, award_won, sequel); empty: all. Entities other than movies have
        only Freebase ids; pass one back as item to see its other movies.
        """
        got = graph_and_node(item)
        if isinstance(got, str):
            return got
        kg, ref = got
        try:
            ns = neighbours(kg, ref, relation or None)
        except KGError as e:
            return str(e)
        by_rel: dict[str, list[str]] = {}
        for n in ns:
            by_rel.setdefault(n.relation, []).append(_entity(kg, cat, n.entity))
        if not by_rel:
            return f"no {relation} facts about {item}"
        lines = []
        for rel, ents in by_rel.items():
            more = f"; ... and {len(ents) - _PER_RELATION} more" if (
                len(ents) > _PER_RELATION) else ""
            lines.append(f"{rel}: {'; '.join(ents[:_PER_RELATION])}{more}")
        return "\n".join(lines)

    def kg_paths(source: str, target: str = "") -> str:
        """kg_paths(source, target): how two movies (ids or titles) are connected in the
        knowledge graph, most specific connections first (a shared actor before a shared
        genre). One-string form: "SOURCE | TARGET".
        """
        if not target and "|" in source:
            source, _, target = source.partition("|")
        a, b = graph_and_node(source), graph_and_node(target)
        if isinstance(a, str):
            return a
        if isinstance(b, str):
            return b
        kg = a[0]
        try:
            found = paths(kg, a[1], b[1])
        except KGError as e:
            return str(e)
        if not found:
            return f"no connection within 4 steps between {source.strip()} and {target.strip()}"
        lines = []
        for hops in found:
            text = _entity(kg, cat, hops[0].source)
            for h in hops:
                text += f" -[{'/'.join(h.relations)}]-> {_entity(kg, cat, h.target)}"
            lines.append(text)
        return "\n".join(lines)

    def kg_shared(item: str, relation: str = "") -> str:
        """kg_shared(item, relation=""): catalogue movies that share an actor or the
        director with a movie (by id or title), most shared first.

        relation: optional, e.g. actor, directed_by, written_by, produced_by; empty:
        actors and director.
        """
        got = graph_and_node(item)
        if isinstance(got, str):
            return got
        kg, ref = got
        try:
            rels = [relation] if relation else [ACTOR, DIRECTOR]
            found = sharing(kg, ref, rels, k=10)
        except KGError as e:
            return str(e)
        lines = []
        for s in found:
            if s.item not in cat.index:
                continue
            kinds = sorted({r for r, _ in s.via})
            lines.append(f"{_line(cat, cat.index[s.item])} (shares {len(s.via)}: "
                         f"{', '.join(kinds)}: {', '.join(e for _, e in s.via[:4])}"
                         f"{', ...' if len(s.via) > 4 else ''})")
        what = relation or "an actor or the director"
        return "\n".join(lines) or f"no catalogue movie shares {what} with {item}"

    return {"item_info": item_info, "similar_items": similar,
            "search_catalog": search_catalog, "semantic_search": semantic_search,
            "kg_neighbours": kg_neighbours, "kg_paths": kg_paths, "kg_shared": kg_shared}


def _user_tools(lib: Library, user: int, before: float | None,
                run: Callable[[], Sequence[Rating]]) -> dict[str, Callable[..., str]]:
    cat = lib.world.catalog

    def past() -> list[Rating]:
        return lib.histories().ratings(user, before) + list(run())

    def user_profile() -> str:
        """user_profile(): who the user is: age, gender, occupation when known, how many
        ratings so far and their mean, the genres rated high and low, recent favourites."""
        attrs = lib.user_attrs[user] if user < len(lib.user_attrs) else {}
        return describe_user(cat, lib.user_ids[user], attrs, past())

    def user_history(n: int = 10) -> str:
        """user_history(n=10): the user's last n ratings up to now (never the future),
        oldest first, as "id: title, genres; rated R/5"."""
        return "\n".join(history_lines(cat, past(), _count(n, 10))) or "no ratings yet"

    def candidates(model: str = "ease", n: int = 20) -> str:
        """candidates(model="ease", n=20): n movies the user has not rated yet, proposed
        by a classic recommender trained on the past only, best first.

        model: pop (most rated), itemknn, ease, als, bpr or random.
        """
        try:
            gen = lib.candidates(model, before)
        except ValueError as e:
            return str(e)
        seen = [r.item for r in run()]
        top = gen.top(user, _count(n, 20), seen)
        return "\n".join(_line(cat, i) for i, _ in top) or "no candidates"

    return {"user_profile": user_profile, "user_history": user_history,
            "candidates": candidates}


def offered(lib: Library, names: Sequence[str]) -> list[str]:
    """The tools of ``names`` this world can answer: knowledge-graph tools only when its
    dataset has a graph (NAME.kg and NAME.link). A role lists the tools it would use; in
    a world without a graph, offering them would only spend calls on "no knowledge graph"
    answers (a synthetic world never has one)."""
    return [n for n in names if n not in KG_TOOLS or lib.kg_paths is not None]


def build_tools(lib: Library, names: Sequence[str], *, user: int | None = None,
                before: float | None = None,
                run: Callable[[], Sequence[Rating]] = tuple,
                extra: dict[str, Callable[..., str]] | None = None) -> dict[str, BaseTool]:
    """LangChain tools ``names`` over ``lib``.

    Args:
        lib: The world's library.
        names: Which tools (CATALOGUE_TOOLS, USER_TOOLS, or keys of ``extra``).
        user: The user (dataset index) the user tools are about.
        before: The clock: the user tools see only past interactions strictly earlier.
        run: The user's ratings made during the simulation so far, oldest first.
        extra: More tool functions by name (their docstrings are their descriptions).

    Raises:
        ValueError: An unknown tool name, or a user tool without ``user``.
    """
    fns: dict[str, Callable[..., str]] = {**_catalogue_tools(lib), **(extra or {})}
    wants_user = [n for n in names if n in USER_TOOLS]
    if wants_user:
        if user is None:
            raise ValueError(f"tools {', '.join(wants_user)} need a user")
        fns.update(_user_tools(lib, user, before, run))
    out: dict[str, BaseTool] = {}
    for n in names:
        if n not in fns:
            raise ValueError(f"unknown tool {n!r}; tools: {', '.join(fns)}")
        out[n] = StructuredTool.from_function(fns[n], name=n)
    return out


class AgentMemory(Protocol):
    """What the memory tools read of an agent's group (``agents.group.AgentGroup``)."""

    @property
    def library(self) -> Library: ...

    def search_memory(self, user: int, query: str, k: int = 5) -> list[str]: ...

    def read_shared(self, user: int, query: str, k: int = 5) -> list[str]: ...

    def run_ratings(self, user: int) -> list[Rating]: ...


def make_tools(group: AgentMemory, user: int, names: list[str]) -> dict[str, BaseTool]:
    """The tools ``names`` for agent ``user`` of ``group`` (its own past and memory)."""

    def search_memory(query: str) -> str:
        """search_memory(query): what you remember that is relevant to the query (your
        past pages, ratings, lessons)."""
        return "\n".join(group.search_memory(user, query)) or "nothing remembered"

    def read_shared(query: str) -> str:
        """read_shared(query): notes your group shared that are relevant to the query."""
        return "\n".join(group.read_shared(user, query)) or "nothing shared yet"

    memory: dict[str, Callable[..., Any]] = {"search_memory": search_memory,
                                             "read_shared": read_shared}
    return build_tools(group.library, offered(group.library, names), user=user,
                       run=lambda: group.run_ratings(user), extra=memory)
