"""Reactive planning (ReAct): thought -> tool call -> observation, until a final answer.

Each iteration asks every agent still planning for one JSON step, runs the tool calls,
and feeds the observations back; an agent stops at ``final`` or after ``max_steps``
tool steps (then it plans nothing: the brain decides on its own). An invalid reply is
an observation too and uses up a step, so a confused model cannot loop forever.
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
    ToolArg,
    by_agent,
    describe_tools,
    guidance_of,
    request_text,
)

__all__ = ["ReActStep", "build_reactive_planner"]


class ReActStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    thought: str = ""
    action: str
    input: ToolArg = ""
    answer: FinalAnswer | None = None


_PROMPT = (
    "{base}\nYou can use these tools:\n{tools}\n"
    "Steps so far:\n{scratch}\n"
    "Think step by step. Answer with JSON only, either a tool call "
    '{{"thought": "...", "action": "TOOL", "input": "..."}} or, when you know enough, '
    '{{"thought": "...", "action": "final", "answer": {{"shortlist": ["ID", ...], '
    '"note": "why"}}}}.'
)


def _scratch(log: list[dict[str, Any]]) -> str:
    lines = []
    for e in log:
        if e.get("step") == "tool":
            lines.append(f"Thought: {e['thought']}\nAction: {e['tool']}({e['input']})\n"
                         f"Observation: {e['observation']}")
        elif e.get("step") == "invalid":
            lines.append(f"(Your last reply was invalid: {e['error']})")
    return "\n".join(lines) or "(none)"


async def _think(state: PlanState, runtime: Runtime[PlannerRuntime]) -> dict[str, Any]:
    rt, reqs = runtime.context, by_agent(state)
    log = {a: list(v) for a, v in state["log"].items()}
    results = dict(state["results"])
    active: list[str] = []

    async def one(agent: str) -> tuple[str, ReActStep | str]:
        prompt = _PROMPT.format(base=request_text(reqs[agent]),
                                tools=describe_tools(rt.tools_for(agent)),
                                scratch=_scratch(log[agent]))
        return await rt.ask_json(agent, "plan:react", prompt, ReActStep)

    for agent, (raw, step) in zip(state["active"], await rt.map(one, state["active"]),
                                  strict=True):
        entry: dict[str, Any]
        if isinstance(step, str):
            entry = {"planner": "reactive", "step": "invalid", "error": step, "raw": raw[:500]}
            active.append(agent)
        elif step.action == "final":
            answer = step.answer or FinalAnswer()
            guidance, ids = guidance_of(answer, reqs[agent])
            entry = {"planner": "reactive", "step": "final", "thought": step.thought,
                     "shortlist": ids, "note": answer.note}
            steps = [e["step"] for e in log[agent]] + ["final"]
            results[agent] = PlanResult(planner="reactive", steps=steps, guidance=guidance,
                                        shortlist=ids)
        else:
            ok, obs = rt.call_tool(agent, step.action, step.input)
            entry = {"planner": "reactive", "step": "tool", "thought": step.thought,
                     "tool": step.action, "input": step.input, "ok": ok, "observation": obs}
            active.append(agent)
        log[agent].append(entry)
        rt.emit(agent, entry)
    return {"log": log, "results": results, "active": active, "n": state["n"] + 1}


async def _give_up(state: PlanState, runtime: Runtime[PlannerRuntime]) -> dict[str, Any]:
    results = dict(state["results"])
    for agent in state["active"]:
        entry = {"planner": "reactive", "step": "step_limit", "limit": runtime.context.max_steps}
        runtime.context.emit(agent, entry)
        steps = [e["step"] for e in state["log"][agent]] + ["step_limit"]
        results[agent] = PlanResult(planner="reactive", steps=steps)
    return {"results": results, "active": []}


def _route(state: PlanState, runtime: Runtime[PlannerRuntime]) -> str:
    if not state["active"]:
        return END
    return "think" if state["n"] < runtime.context.max_steps else "give_up"


def build_reactive_planner() -> CompiledStateGraph[PlanState, PlannerRuntime, PlanState,
                                                   PlanState]:
    g: StateGraph[PlanState, PlannerRuntime, PlanState, PlanState] = StateGraph(
        PlanState, context_schema=PlannerRuntime)
    g.add_node("think", _think)
    g.add_node("give_up", _give_up)
    g.add_edge(START, "think")
    g.add_conditional_edges("think", _route, ["think", "give_up", END])
    g.add_edge("give_up", END)
    return g.compile()
