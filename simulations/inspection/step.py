"""``recarena trace step``: one decision in full: what the agent saw, recalled and planned,
every model call (rendered prompt, raw answer, tokens, latency, cache hit) and the parsed
result."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from simulations.analysis.outcomes import step_types
from simulations.inspection.index import TraceIndex
from simulations.inspection.render import describe, referenced_items, short_id, step_of

__all__ = ["render_step", "step_detail"]

_CONTEXT = ("memory", "plan")


def step_detail(ix: TraceIndex, event_id: str) -> dict[str, Any]:
    """The event ``event_id`` and, for an agent event, every event of its step.

    Raises:
        ValueError: No event with that id (the message suggests ids that start with it).
    """
    ev = ix.by_id(event_id)
    base = step_of(event_id)
    events = ix.under(base) if base is not None else ([ev] if ev else [])
    if ev is None and not events:
        near = [r[0] for r in ix.rows("SELECT id FROM events WHERE id >= ? AND id < ? "
                                      "ORDER BY line LIMIT 5", [event_id, event_id + "\uffff"])]
        hint = f"; ids starting so: {', '.join(near)}" if near else \
            " (ids look like ARM/rROUND/uUSER/STEP[/...]; see trace agent or trace search)"
        raise ValueError(f"trace step: no event {event_id!r} in {ix.trace}{hint}")
    items: dict[str, Any] = {}
    for e in events:
        for iid in referenced_items(e):
            it = ix.item(iid)
            if it is not None:
                items[str(iid)] = {"title": it.title, "year": it.year,
                                   "genres": list(it.genres)}
    # What the agent saw and did are its environment's events (its outcome plug-in says
    # which); a failed decision is the engine's.
    seen, done = step_types()
    by_type = {k: [e for e in events if e.get("type") in types]
               for k, types in (("seen", seen), ("context", _CONTEXT),
                                ("result", (*done, "decision_failure")))}
    # A recommender agent's events carry no user role: take it from the step's other events.
    role = next((e.get("role") for e in (ev, *events) if e and e.get("role")), None)
    return {"run_dir": str(ix.run_dir), "id": event_id, "step": base, "event": ev,
            "agent": (ev or events[0]).get("user"), "role": role,
            "arm": (ev or events[0]).get("arm"), "round": (ev or events[0]).get("round"),
            "seen": by_type["seen"], "context": by_type["context"],
            "llm_calls": [e for e in events if e.get("type") == "llm_call"],
            "result": by_type["result"], "items": items, "trace": ix.end.as_dict()}


def _messages(req: dict[str, Any]) -> RenderableType:
    if "messages" in req:
        return Group(*(Panel(Text(str(content)), title=str(role), title_align="left",
                             border_style="blue" if role == "system" else "green"
                             if role == "user" else "magenta")
                       for role, content in req["messages"]))
    opts = req.get("options", [])
    return Group(Panel(Text(str(req.get("prompt", ""))), title="prompt", title_align="left",
                       border_style="green"),
                 Text(f"options: {json.dumps(opts, ensure_ascii=False)}"))


def _response(resp: dict[str, Any], req: dict[str, Any]) -> RenderableType:
    if "text" in resp:
        return Panel(Text(str(resp["text"])), title="raw output", title_align="left",
                     border_style="yellow")
    lps = resp.get("logprobs", [])
    opts = req.get("options", [])
    rows = "\n".join(f"{o!r}: {lp}" for o, lp in zip(opts, lps, strict=False)) or str(lps)
    return Panel(Text(rows), title="log-probabilities", title_align="left",
                 border_style="yellow")


def render_step(s: dict[str, Any]) -> list[RenderableType]:
    def title(i: Any) -> str:
        it = s["items"].get(str(i))
        return (f"{it['title']} ({it['year']})" if it["year"] and it["year"] not in it["title"]
                else it["title"]) if it else f"item {i}"

    parts: list[RenderableType] = []
    if s["trace"]["note"]:
        parts.append(f"[yellow]{escape(s['trace']['note'])}[/]")
    if s["step"] is None:  # not an agent's step: the event itself
        parts.append(f"[bold]{escape(s['id'])}[/]")
        parts.append(Text(json.dumps(s["event"], indent=2, ensure_ascii=False)))
        return parts
    role = f" ({escape(str(s['role']))})" if s["role"] else ""
    parts.append(f"[bold]step {escape(s['step'])}[/] — agent {escape(str(s['agent']))}"
                 f"{role}, {escape(str(s['arm']))} round {s['round']}")
    if s["event"] is not None and s["event"].get("id") != s["step"]:
        parts.append(f"[dim]asked for {escape(s['id'])}: {describe(s['event'], title)}[/]")
    for title_, key in (("saw", "seen"), ("recalled and planned", "context")):
        if s[key]:
            parts.append(f"[bold cyan]{title_}[/]")
            parts += [f"  {describe(e, title)}" for e in s[key]]
    for c in s["llm_calls"]:
        vol = c.get("volatile") or {}
        hit = "cache hit" if vol.get("cached") else "cache miss (live call)"
        head = (f"[bold cyan]LLM call {escape(short_id(c['id']))}[/] — {escape(c['purpose'])} "
                f"({escape(c.get('kind', ''))}): {c['input_tokens']} tokens in, "
                f"{c['output_tokens']} out, ${c.get('cost_usd', 0):.6f}; {hit}; latency "
                f"{vol.get('latency_s', '-')} s; {vol.get('attempts', '-')} attempts")
        parts.append(head)
        parts.append(f"  [dim]id {escape(c['id'])}; cache key {escape(str(c.get('key')))}[/]")
        req = c.get("request")
        if req is None:
            parts.append("  [yellow]prompt and answer not kept (output.keep_prompts: false)[/]")
            continue
        parts.append(_messages(req))
        if c.get("response") is not None:
            parts.append(_response(c["response"], req))
    if not s["llm_calls"] and s["step"]:
        parts.append("[dim]no model call at this step[/]")
    if s["result"]:
        parts.append("[bold cyan]parsed result[/]")
        for e in s["result"]:
            parts.append(f"  {describe(e, title)}")
            if e.get("inputs"):
                parts.append(f"    [dim]inputs: {escape(json.dumps(e['inputs']))}[/]")
            if e.get("raw"):
                parts.append(Panel(Text("\n---\n".join(map(str, e["raw"]))),
                                   title="raw outputs that failed", border_style="red"))
    return parts
