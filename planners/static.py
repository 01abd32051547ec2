"""Static planning: the same fixed path every time.

With the default path ``[decide]`` the agent acts straight away (Agent4Rec's feed
behaviour; numeric brains use only this). NIR's three-step prompting is
``[summarise_tastes, pick_history, decide]``: the model first summarises the person's
tastes, then picks the past items most representative of them, and the brain decides with
both in its prompt (``{plan}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from planners.base import PlannerRuntime, PlanResult, PlanState, by_agent, request_text

__all__ = ["STATIC_STEPS", "build_static_planner", "static_plan"]

STATIC_STEPS = ("summarise_tastes", "pick_history", "decide")

_PROMPTS = {
    "summarise_tastes": "{base}\nStep 1. In two sentences, summarise this person's tastes "
                        "in movies.",
    "pick_history": "{base}\nTheir tastes: {summary}\nTheir past:\n{history}\n"
                    "Step 2. Name the three past movies above that best represent these "
                    "tastes, one per line.",
}


def static_plan(n_items: int) -> tuple[str, ...]:
    """Look at each item in page order, rate what was watched, then decide to stay or leave."""
    return (*(f"consider item {k + 1}" for k in range(n_items)), "rate watched", "stay or leave")


def _llm_step(step: str) -> Any:
    async def node(state: PlanState, runtime: Runtime[PlannerRuntime]) -> dict[str, Any]:
        rt, reqs = runtime.context, by_agent(state)
        notes = {a: dict(n) for a, n in state["notes"].items()}
        log = {a: list(v) for a, v in state["log"].items()}

        async def one(agent: str) -> str:
            req = reqs[agent]
            prompt = _PROMPTS[step].format(
                base=request_text(req), summary=notes[agent].get("summarise_tastes", ""),
                history="\n".join(f"- {h}" for h in req.history) or "- (none)")
            return (await rt.ask(agent, f"plan:{step}", prompt)).strip()[:600]

        texts = await rt.map(one, state["active"])
        for agent, text in zip(state["active"], texts, strict=True):
            notes[agent][step] = text
            entry = {"planner": "static", "step": step, "output": text}
            log[agent].append(entry)
            rt.emit(agent, entry)
        return {"notes": notes, "log": log}
    return node


async def _decide(state: PlanState, runtime: Runtime[PlannerRuntime]) -> dict[str, Any]:
    rt = runtime.context
    results: dict[str, PlanResult] = {}
    for req in state["requests"]:
        notes = state["notes"][req.agent]
        parts = []
        if "summarise_tastes" in notes:
            parts.append(f"Your tastes: {notes['summarise_tastes']}")
        if "pick_history" in notes:
            parts.append(f"Representative past movies:\n{notes['pick_history']}")
        steps = [e["step"] for e in state["log"][req.agent]] + ["decide"]
        rt.emit(req.agent, {"planner": "static", "step": "decide",
                            "path": steps, "items": len(req.items)})
        results[req.agent] = PlanResult(planner="static", steps=steps,
                                        guidance="\n".join(parts))
    return {"results": results, "active": []}


def build_static_planner(
    steps: Sequence[str] = ("decide",),
) -> CompiledStateGraph[PlanState, PlannerRuntime, PlanState, PlanState]:
    """A subgraph running ``steps`` in order for every agent of the batch."""
    if not steps or steps[-1] != "decide" or any(s not in STATIC_STEPS for s in steps):
        raise ValueError(f"static steps must be drawn from {STATIC_STEPS} and end with decide")
    g: StateGraph[PlanState, PlannerRuntime, PlanState, PlanState] = StateGraph(
        PlanState, context_schema=PlannerRuntime)
    prev = START
    for s in steps:
        g.add_node(s, _decide if s == "decide" else _llm_step(s))
        g.add_edge(prev, s)
        prev = s
    g.add_edge(prev, END)
    return g.compile()
