"""An agent's tools, as LangChain tools: what a reactive or preactive planner may call.

Each tool is bound to one agent (its memory, its past) and to the simulation clock: a
history tool only ever shows what the agent did before now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from langchain_core.tools import BaseTool, StructuredTool

from agents.brains.utility import World
from tools.lookup import find_item, item_facts, similar_items

if TYPE_CHECKING:
    from agents.group import AgentGroup

__all__ = ["make_tools"]


def _tool(fn: Callable[[str], str], name: str, doc: str) -> BaseTool:
    return StructuredTool.from_function(fn, name=name, description=doc)


def make_tools(group: AgentGroup, user: int, names: list[str]) -> dict[str, BaseTool]:
    """The tools ``names`` for agent ``user`` of ``group``."""
    world: World = group.world
    cat = world.catalog

    def item_info(item: str) -> str:
        i = find_item(cat, item)
        if i is None:
            return f"no item {item!r} in the catalogue"
        return item_facts(cat, i, float(world.item_mean[i]), int(world.popularity[i]))

    def similar(item: str) -> str:
        i = find_item(cat, item)
        if i is None:
            return f"no item {item!r} in the catalogue"
        return "\n".join(item_facts(cat, j, float(world.item_mean[j]), int(world.popularity[j]))
                         for j in similar_items(cat, world.embeddings, i, 5))

    def search_memory(query: str) -> str:
        return "\n".join(group.search_memory(user, query)) or "nothing remembered"

    def user_history(n: str) -> str:
        k = int(n) if str(n).strip().isdigit() else 10
        return "\n".join(group.history_lines(user, k)) or "no history yet"

    def read_shared(query: str) -> str:
        return "\n".join(group.read_shared(user, query)) or "nothing shared yet"

    available = {
        "item_info": (item_info, "item_info(item): facts about a movie, by id or title: "
                      "year, genres, mean rating, how many ratings."),
        "similar_items": (similar, "similar_items(item): the five movies most similar to "
                          "one movie, by id or title."),
        "search_memory": (search_memory, "search_memory(query): what you remember that "
                          "is relevant to the query (your past pages, ratings, lessons)."),
        "user_history": (user_history, "user_history(n): the last n things you watched "
                         "and rated, up to now (never the future)."),
        "read_shared": (read_shared, "read_shared(query): notes your group shared that "
                        "are relevant to the query."),
    }
    return {n: _tool(available[n][0], n, available[n][1]) for n in names}
