"""Reflective planning (Reflexion): attempt, critique yourself, retry with the lesson.

The lesson of a failed attempt is handed to ``on_lesson`` (the agent writes it to its
memory) and comes back in later requests' ``lessons``, so the agent plans differently
next time, not only within this step. At most ``max_attempts`` attempts per step.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict

from planners.base import (
    FinalAnswer,
    PlannerRuntime,
    PlanResult,
    PlanState,
    by_agent,
    guidance_of,
    request_text,
)

__all__ = ["Critique", "build_reflective_planner"]


class Critique(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ok: bool
    lesson: str = ""


_ATTEMPT = (
    "{base}{lessons}\nPick the items that fit this person. Answer with JSON only: "
    '{{"shortlist": ["ID", ...], "note": "why"}}'
)
_CRITIQUE = (
    "{base}\nA first attempt chose: {shortlist} ({note}).\n"
    "Critique it against the person's tastes and memories. Answer with JSON only: "
    '{{"ok": true, "lesson": ""}} if it fits, or {{"ok": false, "lesson": "what to do '
    'differently"}}'
)


async def _attempt(state: PlanState, runtime: Runtime[PlannerRuntime]) -> dict[str, Any]:
    rt, reqs = runtime.context, by_agent(state)
    notes = {a: dict(n) for a, n in state["notes"].items()}
    log = {a: list(v) for a, v in state["log"].items()}

    async def one(agent: str) -> tuple[str, FinalAnswer | str]:
        own = notes[agent].get("lessons", [])
        lessons = ("\nLessons from this step's earlier attempts:\n"
                   + "\n".join(f"- {x}" for x in own)) if own else ""
        prompt = _ATTEMPT.format(base=request_text(reqs[agent]), lessons=lessons)
        return await rt.ask_json(agent, "plan:attempt", prompt, FinalAnswer)

    for agent, (raw, ans) in zip(state["active"], await rt.map(one, state["active"]),
                                 strict=True):
        n = notes[agent]
        n["attempts"] = int(n.get("attempts", 0)) + 1
        if isinstance(ans, str):
            entry: dict[str, Any] = {"planner": "reflective", "step": "attempt",
                                     "attempt": n["attempts"], "error": ans, "raw": raw[:500]}
            n["answer"] = None
        else:
            guidance, ids = guidance_of(ans, reqs[agent])
            entry = {"planner": "reflective", "step": "attempt", "attempt": n["attempts"],
                     "shortlist": ids, "note": ans.note}
            n["answer"] = {"guidance": guidance, "shortlist": ids, "note": ans.note}
        log[agent].append(entry)
        rt.emit(agent, entry)
    return {"notes": notes, "log": log}


async def _critique(state: PlanState, runtime: Runtime[PlannerRuntime]) -> dict[str, Any]:
    rt, reqs = runtime.context, by_agent(state)
    notes = {a: dict(n) for a, n in state["notes"].items()}
    log = {a: list(v) for a, v in state["log"].items()}
    results = dict(state["results"])

    async def one(agent: str) -> tuple[str, Critique | str]:
        ans = notes[agent]["answer"]
        if ans is None:
            return "", Critique(ok=False, lesson="answer with valid JSON naming item ids")
        return await rt.ask_json(agent, "plan:critique", _CRITIQUE.format(
            base=request_text(reqs[agent]), shortlist=", ".join(ans["shortlist"]) or "nothing",
            note=ans["note"] or "no reason given"), Critique)

    again: list[str] = []
    for agent, (raw, crit) in zip(state["active"], await rt.map(one, state["active"]),
                                  strict=True):
        n = notes[agent]
        if isinstance(crit, str):
            entry: dict[str, Any] = {"planner": "reflective", "step": "critique",
                                     "error": crit, "raw": raw[:500]}
            ok, lesson = True, ""  # an unreadable critique is no reason to retry
        else:
            ok, lesson = crit.ok, crit.lesson.strip()
            entry = {"planner": "reflective", "step": "critique", "ok": ok, "lesson": lesson}
        log[agent].append(entry)
        rt.emit(agent, entry)
        if not ok and lesson:
            n["lessons"] = [*n.get("lessons", []), lesson]
            rt.on_lesson(agent, lesson)
        if not ok and n["attempts"] < rt.max_attempts:
            again.append(agent)
            continue
        ans = n["answer"] or {"guidance": "", "shortlist": None}
        steps = [e["step"] for e in log[agent]]
        results[agent] = PlanResult(planner="reflective", steps=steps,
                                    guidance=ans["guidance"], shortlist=ans["shortlist"])
    return {"notes": notes, "log": log, "results": results, "active": again}


def _route(state: PlanState) -> str:
    return "attempt" if state["active"] else END


def build_reflective_planner() -> CompiledStateGraph[PlanState, PlannerRuntime, PlanState,
                                                     PlanState]:
    g: StateGraph[PlanState, PlannerRuntime, PlanState, PlanState] = StateGraph(
        PlanState, context_schema=PlannerRuntime)
    g.add_node("attempt", _attempt)
    g.add_node("critique", _critique)
    g.add_edge(START, "attempt")
    g.add_edge("attempt", "critique")
    g.add_conditional_edges("critique", _route, ["attempt", END])
    return g.compile()
