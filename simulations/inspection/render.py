"""Terminal rendering shared by the trace views: consoles, paging, one-line event texts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape

from simulations.analysis.outcomes import Marks, clip, describers

__all__ = ["clip", "console", "describe", "fmt", "print_paged", "referenced_items", "short_id",
           "step_of"]


def console() -> Console:
    # Off a terminal rich assumes 80 columns, too narrow for the tables.
    c = Console(highlight=False, soft_wrap=False)
    return c if c.is_terminal else Console(highlight=False, soft_wrap=False, width=120)


def print_paged(out: Console, parts: Sequence[RenderableType], pager: bool = True) -> None:
    """Print ``parts``, through the pager when on a terminal and longer than the screen."""
    if pager and out.is_terminal:
        with out.capture() as cap:
            for p in parts:
                out.print(p)
        if cap.get().count("\n") > out.height:
            with out.pager(styles=True):
                for p in parts:
                    out.print(p)
            return
    for p in parts:
        out.print(p)


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def step_of(id_: str) -> str | None:
    """``ARM/rR/uU/STEP`` of an agent event id, else None."""
    parts = id_.split("/")
    if len(parts) >= 4 and parts[1].startswith("r") and parts[2].startswith("u"):
        return "/".join(parts[:4])
    return None


def short_id(id_: str) -> str:
    """The part of an id below its step (``i23``, ``llm0``), or the id itself."""
    base = step_of(id_)
    return id_[len(base) + 1:] if base and id_ != base else id_


def referenced_items(ev: dict[str, Any]) -> list[str]:
    """Ids of the items an event mentions (shown, decided on, recalled, loved...)."""
    items = ev.get("items")
    out = [str(i) for i in items if isinstance(i, str | int)] if isinstance(items, list) else []
    out += [str(ev[k]) for k in ("item", "accept", "target") if isinstance(ev.get(k), str | int)]
    if ev.get("type") == "memory" and ev.get("kind") == "short_term":
        out += [str(r).partition(":")[2] for r in ev.get("recalled", [])]
    if ev.get("type") == "memory" and ev.get("kind") == "long_term":
        out += [str(r).rsplit("/", 1)[-1] for r in ev.get("recalled", [])
                if "/reflection/" not in str(r)]
    if ev.get("type") == "profile":
        tastes = ev.get("tastes") or {}
        out += [str(i) for i in tastes.get("liked_items", []) + tastes.get("disliked_items", [])]
    return out


def _memory_about(memory_id: str, title: Callable[[Any], str]) -> str:
    # Factual memory ids end with the item they are about (ARM/USER/rR/STEP/ITEM);
    # reflections are USER/reflection/STEP.
    if "/reflection/" in memory_id:
        return f"a reflection ({memory_id})"
    last = memory_id.rsplit("/", 1)[-1]
    return "something it said" if last == "said" else title(last)


_STD = {"v", "seq", "id", "type", "ts", "arm", "round", "user", "role", "page", "turn"}


def _rest(ev: dict[str, Any], skip: Sequence[str] = ()) -> str:
    keep = {k: v for k, v in ev.items() if k not in _STD and k not in skip}
    return clip(", ".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
        for k, v in keep.items()), 200)


def describe(ev: dict[str, Any], title: Callable[[Any], str], markup: bool = True) -> str:
    """One line saying what an event means, with item titles (rich markup unless not)."""
    def e(x: Any) -> str:
        return escape(str(x)) if markup else str(x)

    def b(x: str) -> str:
        return f"[bold]{x}[/]" if markup else x

    def d(x: str) -> str:
        return f"[dim]{x}[/]" if markup else x

    t = ev.get("type")
    env_describe = describers().get(str(t))
    if env_describe is not None:  # an environment's own event (its outcome plug-in's words)
        return env_describe(ev, title, Marks(markup))
    if t == "memory":
        kind, op = ev.get("kind"), ev.get("op")
        if op == "read" and kind == "short_term":
            rec = []
            for r in ev.get("recalled", []):
                act, _, iid = str(r).partition(":")
                rec.append(f"{act} {title(iid)}" if iid else str(r))
            return f"recalls (short-term): {e(clip('; '.join(rec), 300))}"
        if op == "read" and kind == "long_term":
            return (f"recalls (long-term) for {e(clip(ev.get('query', ''), 80))!r}: "
                    + e(clip("; ".join(_memory_about(str(r), title)
                                       for r in ev.get("recalled", [])), 300)))
        if op == "read" and kind == "shared":
            return (f"reads shared notes ({e(ev.get('store'))}): "
                    f"{e(clip('; '.join(map(str, ev.get('recalled', []))), 240))}")
        if kind == "reflection":
            return f"{b('reflects')}: {e(clip(ev.get('text', ''), 300))}"
        if op == "write":
            return f"remembers {len(ev.get('ids', []))} {e(kind)} memories"
        return f"memory {e(op)} {e(kind)}: {e(_rest(ev, ('op', 'kind')))}"
    if t == "plan":
        return (f"plan {e('[' + str(ev.get('planner')) + ']')} {b(e(ev.get('step')))}: "
                f"{e(_rest(ev, ('planner', 'step')))}")
    if t == "llm_call":
        vol = ev.get("volatile") or {}
        hit = "cache hit" if vol.get("cached") else "live"
        return (f"LLM call ({e(ev.get('purpose'))}, {e(ev.get('kind'))}): "
                f"{ev.get('input_tokens')} tokens in, {ev.get('output_tokens')} out, {hit}"
                f"{'' if 'request' in ev else ', prompt not kept'}")
    if t == "decision_failure":
        return (f"[red]decision failed[/] ({e(ev.get('purpose'))}, {ev.get('attempts')} "
                f"attempts): {e(clip(ev.get('error', ''), 200))}" if markup else
                f"decision failed ({ev.get('purpose')}, {ev.get('attempts')} attempts): "
                f"{clip(ev.get('error', ''), 200)}")
    if t == "profile":
        tr = ev.get("traits", {})
        return (f"profile: role {e(ev.get('role'))}, activity {tr.get('activity')}, "
                f"conformity {tr.get('conformity')}, diversity {tr.get('diversity')}")
    if t == "metric":
        where = f"round {ev.get('round')}" if ev.get("round") is not None else "overall"
        return f"{e(ev.get('arm'))} {where}: {e(ev.get('name'))} = {fmt(ev.get('value'))}"
    if t == "item_update":
        return _item_update(ev, title, e, b)
    if t == "run_end":
        return f"run ended: {e(ev.get('status'))} {e(ev.get('reason') or '')}"
    if t in _RECSYS:
        return _recsys(ev, title, e, b)
    return e(_rest(ev))


def _item_update(ev: dict[str, Any], title: Callable[[Any], str], e: Callable[[Any], str],
                 b: Callable[[str], str]) -> str:
    """An arm's item agents after a round: how many descriptions changed, and one."""
    ex = ev.get("example") or {}
    line = (f"{e(ev.get('arm'))}'s item agents learn from {ev.get('steps')} choices "
            f"({ev.get('right')} foreseen): {b(str(ev.get('changed')))} descriptions "
            "rewritten")
    if ex:
        line += (f"; {e(title(ex.get('item')))} was “{e(clip(ex.get('before', ''), 100))}”, "
                 f"now “{e(clip(ex.get('after', ''), 100))}”")
    return line


_RECSYS = {"agent_task", "delegation", "agent_message", "tool_call", "lesson", "agent_answer"}


def _recsys(ev: dict[str, Any], title: Callable[[Any], str], e: Callable[[Any], str],
            b: Callable[[str], str]) -> str:
    """A recommender agent's event: who asked or did what, tool names before results."""
    t = ev["type"]
    failed = f" (failed: {e(clip(ev['failure'], 100))})" if ev.get("failure") else ""
    if t == "agent_task":
        item = f" about {e(title(ev['item']))}" if ev.get("item") is not None else ""
        ctx = "; with the conversation so far" if ev.get("context") else ""
        return (f"{b(e(ev.get('agent')))} gets task {e(ev.get('task'))}{item}: "
                f"{len(ev.get('candidates') or [])} candidates{ctx}")
    if t == "delegation":
        return (f"{b(e(ev.get('manager')))} asks {b(e(ev.get('member')))} "
                f"({e(ev.get('kind'))}): “{e(clip(ev.get('message', ''), 200))}”")
    if t == "agent_message":
        return (f"{b(e(ev.get('member')))} replies{failed}: "
                f"“{e(clip(ev.get('text') or '', 240))}”")
    if t == "tool_call":
        args = json.dumps(ev.get("input") or {}, ensure_ascii=False)
        res = "failed: " if ev.get("ok") is False else ""
        return (f"{e(ev.get('agent'))} calls {b(e(ev.get('tool')))} {e(args)} -> "
                f"{res}{e(clip(ev.get('result', ''), 200))}")
    if t == "lesson":
        return (f"{b(e(ev.get('member')))} writes a lesson to {e(ev.get('store'))}: "
                f"{e(clip(ev.get('text', ''), 200))}")
    parts = [e(clip("; ".join(title(i) for i in ev.get("items") or []), 200))]
    if ev.get("rating") is not None:
        parts.append(f"rating {ev['rating']}")
    if ev.get("text"):
        parts.append(f"“{e(clip(ev['text'], 200))}”")
    return (f"{b(e(ev.get('agent')))} answers {e(ev.get('task'))}{failed}: "
            + ", ".join(p for p in parts if p))
