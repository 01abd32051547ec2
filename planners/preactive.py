"""Preactive planning: write the plan first, naming what could go wrong, then execute it.

1. ``plan``: the model lists up to ``max_steps`` tool steps and the risks it foresees;
2. ``execute``: the steps run in order; a step fails when its tool is unknown, raises, or
   finds nothing;
3. on a failure the agent re-plans with what went wrong (at most ``max_replans`` times);
4. ``decide``: the model gives its final answer from everything it observed.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field

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

__all__ = ["PlanSteps", "build_preactive_planner"]


class ToolStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tool: str
    input: ToolArg = ""
    why: str = ""


class PlanSteps(BaseModel):
    model_config = ConfigDict(extra="ignore")

    steps: list[ToolStep] = Field(default_factory=list)
    risks: list[str] = Field(default_factory=list)


_PLAN = (
    "{base}\nYou can use these tools:\n{tools}\n{failure}"
    "Before acting, write a plan of at most {n} tool steps and name what could go wrong. "
    'Answer with JSON only: {{"steps": [{{"tool": "TOOL", "input": "...", "why": "..."}}], '
    '"risks": ["..."]}}'
)
_DECIDE = (
    "{base}\nWhat your plan found:\n{found}\n"
    'Now decide. Answer with JSON only: {{"shortlist": ["ID", ...], "note": "why"}}'
)


async def _plan(state: PlanState, runtime: Runtime[PlannerRuntime]) -> dict[str, Any]:
    rt, reqs = runtime.context, by_agent(state)
    notes = {a: dict(n) for a, n in state["notes"].items()}
    log = {a: list(v) for a, v in state["log"].items()}

    async def one(agent: str) -> tuple[str, PlanSteps | str]:
        fail = notes[agent].get("failure")
        prompt = _PLAN.format(
            base=request_text(reqs[agent]), tools=describe_tools(rt.tools_for(agent)),
            n=rt.max_steps,
            failure=f"Your previous plan failed: {fail}\nRe-plan around it.\n" if fail else "")
        return await rt.ask_json(agent, "plan:preactive", prompt, PlanSteps)

    for agent, (raw, plan) in zip(state["active"], await rt.map(one, state["active"]),
                                  strict=True):
        n = notes[agent]
        step = "replan" if n.get("failure") else "plan"
        if isinstance(plan, str):
            entry: dict[str, Any] = {"planner": "preactive", "step": step, "error": plan,
                                     "raw": raw[:500]}
            n["steps"], n["failure"] = [], f"invalid plan: {plan}"
        else:
            steps = [s.model_dump() for s in plan.steps[: rt.max_steps]]
            entry = {"planner": "preactive", "step": step, "steps": steps, "risks": plan.risks}
            n["steps"], n["failure"] = steps, None
        log[agent].append(entry)
        rt.emit(agent, entry)
    return {"notes": notes, "log": log}


async def _execute(state: PlanState, runtime: Runtime[PlannerRuntime]) -> dict[str, Any]:
    rt = runtime.context
    notes = {a: dict(n) for a, n in state["notes"].items()}
    log = {a: list(v) for a, v in state["log"].items()}
    again: list[str] = []
    for agent in state["active"]:
        n = notes[agent]
        found = list(n.get("found", []))
        failure = n.get("failure")
        for s in n.get("steps", []) if failure is None else []:
            ok, obs = rt.call_tool(agent, s["tool"], s["input"])
            entry = {"planner": "preactive", "step": "execute", "tool": s["tool"],
                     "input": s["input"], "ok": ok, "observation": obs}
            log[agent].append(entry)
            rt.emit(agent, entry)
            if not ok:
                failure = f"step {s['tool']}({s['input']}) failed: {obs}"
                break
            found.append(f"{s['tool']}({s['input']}): {obs}")
        n["found"], n["failure"] = found, failure
        replans = int(n.get("replans", 0))
        if failure is not None and replans < rt.max_replans:
            n["replans"] = replans + 1
            again.append(agent)
    return {"notes": notes, "log": log, "active": again}


async def _decide(state: PlanState, runtime: Runtime[PlannerRuntime]) -> dict[str, Any]:
    rt, reqs = runtime.context, by_agent(state)
    agents = [r.agent for r in state["requests"]]

    async def one(agent: str) -> tuple[str, FinalAnswer | str]:
        found = "\n".join(f"- {f}" for f in state["notes"][agent].get("found", [])) or "- nothing"
        prompt = _DECIDE.format(base=request_text(reqs[agent]), found=found)
        return await rt.ask_json(agent, "plan:decide", prompt, FinalAnswer)

    results: dict[str, PlanResult] = {}
    for agent, (raw, ans) in zip(agents, await rt.map(one, agents), strict=True):
        steps = [e["step"] for e in state["log"][agent]] + ["decide"]
        if isinstance(ans, str):
            entry: dict[str, Any] = {"planner": "preactive", "step": "decide", "error": ans,
                                     "raw": raw[:500]}
            results[agent] = PlanResult(planner="preactive", steps=steps)
        else:
            guidance, ids = guidance_of(ans, reqs[agent])
            entry = {"planner": "preactive", "step": "decide", "shortlist": ids,
                     "note": ans.note}
            results[agent] = PlanResult(planner="preactive", steps=steps, guidance=guidance,
                                        shortlist=ids)
        rt.emit(agent, entry)
    return {"results": results, "active": []}


def _route(state: PlanState) -> Literal["plan", "decide"]:
    return "plan" if state["active"] else "decide"


def build_preactive_planner() -> CompiledStateGraph[PlanState, PlannerRuntime, PlanState,
                                                    PlanState]:
    g: StateGraph[PlanState, PlannerRuntime, PlanState, PlanState] = StateGraph(
        PlanState, context_schema=PlannerRuntime)
    g.add_node("plan", _plan)
    g.add_node("execute", _execute)
    g.add_node("decide", _decide)
    g.add_edge(START, "plan")
    g.add_edge("plan", "execute")
    g.add_conditional_edges("execute", _route, ["plan", "decide"])
    g.add_edge("decide", END)
    return g.compile()
