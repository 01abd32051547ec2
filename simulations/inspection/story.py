"""``recarena trace agent``: one agent's story in order, with item titles."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.markup import escape
from rich.text import Text

from simulations.analysis.outcomes import no_plugin_note, outcomes_for, registered
from simulations.inspection.index import TraceIndex
from simulations.inspection.render import clip, describe, referenced_items, step_of

__all__ = ["agent_story", "normalise_agent", "render_story"]

def normalise_agent(agent: str) -> str:
    """``u42`` and ``42`` both name user 42 (ids in the trace are ``.../u42/...``)."""
    return agent[1:] if agent[:1] == "u" and agent[1:].isdigit() else agent


def agent_story(ix: TraceIndex, agent: str) -> dict[str, Any]:
    """The agent's events in trace order, its profile, and the items they mention.

    Raises:
        ValueError: No such agent in the trace (the message names a few that exist).
    """
    user = normalise_agent(agent)
    events = ix.agent(user)
    if not events:
        some = ", ".join(ix.users()[:8])
        raise ValueError(f"trace agent: no agent {agent!r} in {ix.trace} "
                         f"(agents are user ids{': ' + some if some else ''})")
    profile = next((e for e in events if e.get("type") == "profile"), None)
    items: dict[str, Any] = {}
    for ev in events:
        for iid in referenced_items(ev):
            it = ix.item(iid)
            if it is not None and iid not in items:
                items[iid] = {"title": it.title, "year": it.year, "genres": list(it.genres)}
    env = str(ix.run_start().get("environment") or "feed")
    # Only an environment without an outcome plug-in adds a key (the JSON is otherwise
    # what it always was).
    unplugged = {} if outcomes_for(env) is not None else {"note": no_plugin_note(env)}
    return {**unplugged, "run_dir": str(ix.run_dir), "agent": user,
            "role": (profile or {}).get("role") or events[-1].get("role"),
            "profile": profile, "trace": ix.end.as_dict(), "items": items, "events": events}


def _profile_lines(p: dict[str, Any], title: Any) -> list[str]:
    tr, ta, h = p.get("traits") or {}, p.get("tastes") or {}, p.get("history") or {}
    lines = [
        "traits: " + ", ".join(f"{k} {v}" for k, v in tr.items()),
        f"likes: {', '.join(ta.get('liked_genres', [])) or '-'}; dislikes: "
        f"{', '.join(ta.get('disliked_genres', [])) or '-'}",
    ]
    if ta.get("liked_items"):
        lines.append("loved: " + "; ".join(title(i) for i in ta["liked_items"]))
    if ta.get("disliked_items"):
        lines.append("disliked: " + "; ".join(title(i) for i in ta["disliked_items"]))
    lines.append(f"history: {h.get('n')} ratings, mean {h.get('rating_mean')} "
                 f"(sd {h.get('rating_std')})")
    if p.get("attrs"):
        lines.append("attributes: " + ", ".join(f"{k} {v}" for k, v in p["attrs"].items()))
    return lines


def _step_title(step: str, ev: dict[str, Any]) -> str:
    """A step's heading: the run's environment's words first (its outcome plug-in), then
    any other environment's, else the step's name."""
    name = step.rsplit("/", 1)[-1]
    for o in registered().values():
        title = o.step_title(name) if o.step_title is not None else None
        if title is not None:
            return title
    return name


def render_story(s: dict[str, Any]) -> list[RenderableType]:
    def title(i: Any) -> str:
        it = s["items"].get(str(i))
        return (f"{it['title']} ({it['year']})" if it["year"] and it["year"] not in it["title"]
                else it["title"]) if it else f"item {i}"

    parts: list[RenderableType] = []
    if s["trace"]["note"]:
        parts.append(f"[yellow]{escape(s['trace']['note'])}[/]")
    parts.append(f"[bold]agent {escape(s['agent'])}[/] — role {escape(str(s['role']))} "
                 f"— {len(s['events'])} events in {escape(s['run_dir'])}")
    if s["profile"]:
        parts += [f"  {escape(x)}" for x in _profile_lines(s["profile"], title)]
    if s.get("note"):
        parts.append(f"[yellow]{escape(s['note'])}[/]")
    parts.append("[dim]a step in full (prompts, raw answers): recarena trace step RUN "
                 "STEP_ID[/]")
    section = step = None
    for ev in s["events"]:
        if ev.get("type") == "profile":
            continue
        arm, rnd = ev.get("arm"), ev.get("round")
        if arm is not None and (arm, rnd) != section:
            section = (arm, rnd)
            parts.append(Text(""))
            parts.append(f"[bold reverse] {escape(str(arm))} · round {rnd} [/]")
            step = None
        base = step_of(str(ev.get("id", "")))
        if base is not None and base != step:
            step = base
            parts.append(f"[bold cyan]{escape(_step_title(base, ev))}[/] [dim]{escape(base)}[/]")
        indent = "    " if base is not None and ev.get("id") != base else "  "
        if ev.get("type") in ("page", "recommendation"):
            indent = "  "
        parts.append(indent + describe(ev, title))
    if s["trace"]["note"]:
        parts.append(f"[yellow]the trace ends here: {escape(clip(s['trace']['note'], 300))}[/]")
    return parts
