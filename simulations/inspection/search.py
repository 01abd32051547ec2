"""``recarena trace search``: events by text, type, agent, item and field values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table

from simulations.inspection.index import TraceIndex, Where
from simulations.inspection.render import describe
from simulations.inspection.story import normalise_agent

__all__ = ["render_search", "search_events"]


def search_events(ix: TraceIndex, query: str | None = None, *, types: Sequence[str] = (),
                  agent: str | None = None, item: str | None = None,
                  where: Sequence[str] = (), limit: int = 50) -> dict[str, Any]:
    """The first ``limit`` matching events (``more`` says whether there are others)."""
    if limit < 1:
        raise ValueError(f"trace search: --limit: must be at least 1 (got {limit})")
    known = set(ix.counts())
    unknown = [t for t in types if t not in known]
    if unknown:
        raise ValueError(f"trace search: --type: no {', '.join(map(repr, unknown))} events in "
                         f"this trace (there are: {', '.join(sorted(known))})")
    filters = [Where.parse(w) for w in where]
    user = normalise_agent(agent) if agent is not None else None
    found = ix.search(query, types=types, agent=user, item=item, where=filters,
                      limit=limit + 1)
    return {"run_dir": str(ix.run_dir), "query": query, "types": list(types), "agent": user,
            "item": item, "where": list(where), "limit": limit, "more": len(found) > limit,
            "events": found[:limit], "trace": ix.end.as_dict()}


def render_search(r: dict[str, Any], ix: TraceIndex) -> list[RenderableType]:
    parts: list[RenderableType] = []
    if r["trace"]["note"]:
        parts.append(f"[yellow]{escape(r['trace']['note'])}[/]")
    t = Table(show_lines=False)
    for col in ("seq", "id", "type", "what"):
        t.add_column(col, overflow="fold", no_wrap=col != "what")
    for ev in r["events"]:
        t.add_row(str(ev.get("seq", "")), escape(str(ev.get("id", ""))), str(ev.get("type")),
                  describe(ev, ix.title))
    parts.append(t)
    n = len(r["events"])
    if r["more"]:
        parts.append(f"first {n} matches; there are more (raise --limit)")
    else:
        parts.append(f"{n} match{'es' if n != 1 else ''}")
    return parts
