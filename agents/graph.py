"""An agent is a role compiled into a LangGraph graph:

    START -> perceive -> recall -> plan -> act -> remember -> END

- ``perceive``: take the environment's observations (typed, see agents.observations);
  a user's profile enters the trace the first time it is seen;
- ``recall``: short-term window, long-term store (chromadb), lessons, shared notes;
- ``plan``: the role's planner subgraph (static / reactive / preactive / reflective);
- ``act``: the brain turns observation + memories + plan into a typed action;

The graph knows no environment: every hook that depends on what was observed (memory
query, planning problem, which brain capability with which view, memory writes) belongs
to the observation's interaction kind (agents.kinds), looked up by ``obs.kind``.
- ``remember``: short-term, long-term and shared writes, reflections, LLM-call events.

One invocation serves every agent of the group that acts at this step (a batch), so
LangGraph's per-node cost is paid per step, not per agent; the per-agent contract is the
same (``AgentGroup`` + one observation in, one action out). Nodes are coroutines
(``act_batch`` awaits ``graph.ainvoke``): in ``plan``, ``act`` and ``remember`` (reflections)
the agents' LLM calls are gathered at once and the LLM client's limits pace them; results
are taken in the batch's order, so the trace never depends on which answer came first.
State holds only JSON-serialisable data (observations, memories, plans, actions as
pydantic models and dicts); stores, brain, planner and trace writer live in the runtime context.
"""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.brains.base import DecisionFailure
from agents.brains.capabilities import Thinker
from agents.group import AgentGroup
from agents.kinds import Recalled, kind_for
from agents.observations import Action, Failure, Observation
from planners import PlannerRuntime, PlanRequest, PlanResult, initial_state

__all__ = ["AgentState", "act_batch", "build_agent_graph"]


class AgentState(TypedDict):
    observations: list[Observation]
    recalled: dict[str, list[dict[str, Any]]]  # short-term, per agent
    recalled_lt: dict[str, list[str]]  # long-term + shared + lessons, per agent
    plans: dict[str, PlanResult]
    actions: dict[str, Action]


def _key(obs: Observation) -> str:
    return str(obs.agent)


# ----------------------------------------------------------------------------- nodes


async def perceive(state: AgentState, runtime: Runtime[AgentGroup]) -> dict[str, Any]:
    g = runtime.context
    for obs in state["observations"]:
        if obs.agent not in g.profiled:
            g.profiled.add(obs.agent)
            ev = g.profiles[obs.agent].to_event()
            g.emit("profile", f"profile/u{ev['user']}", role=g.name, **ev)
    return {}


async def recall(state: AgentState, runtime: Runtime[AgentGroup]) -> dict[str, Any]:
    g = runtime.context
    lt = g.long_term
    recalled: dict[str, list[dict[str, Any]]] = {}
    recalled_lt: dict[str, list[str]] = {}
    for obs in state["observations"]:
        u, key = obs.agent, _key(obs)
        recent = list(g.memory.recent(u))
        recalled[key] = recent
        if recent:
            g.emit("memory", f"{obs.base}/memory", **obs.where, op="read", kind="short_term",
                   recalled=[f"{m['action']}:{m['item']}" for m in recent])
        more = [f"lesson: {x}" for x in g.memory.lessons(u)]
        reads_lt = lt is not None and bool(lt.config.top_k)
        query = (kind_for(obs).query(g, obs) if reads_lt or g.shared is not None
                 else None)
        if query is not None and lt is not None and reads_lt:
            w = lt.config.weights
            hits = lt.store.retrieve(g.profiles[u].user_id, query, lt.config.top_k,
                                     now_step=lt.step,
                                     weights=(w.relevance, w.recency, w.importance),
                                     decay=lt.config.recency_decay)
            more += [h.record.text for h in hits]
            if hits:
                g.emit("memory", f"{obs.base}/memory_lt", **obs.where, op="read",
                       kind="long_term", query=query, recalled=[h.record.id for h in hits],
                       scores=[round(h.score, 4) for h in hits])
        if query is not None and g.shared is not None:
            notes = g.read_shared(u, query)
            more += [f"shared: {n}" for n in notes]
            if notes:
                g.emit("memory", f"{obs.base}/memory_shared", **obs.where, op="read",
                       kind="shared", store=g.shared.name, recalled=notes)
        recalled_lt[key] = more
    return {"recalled": recalled, "recalled_lt": recalled_lt}


def _recalled(state: AgentState, key: str) -> Recalled:
    return Recalled(state["recalled"][key], state["recalled_lt"][key],
                    state["plans"].get(key))


async def plan(state: AgentState, runtime: Runtime[AgentGroup]) -> dict[str, Any]:
    g = runtime.context
    requests: list[PlanRequest] = []
    where: dict[str, Observation] = {}
    for obs in state["observations"]:
        req = kind_for(obs).plan_request(g, obs, Recalled(
            state["recalled"][_key(obs)], state["recalled_lt"][_key(obs)]))
        if req is not None:
            requests.append(req)
            where[req.agent] = obs
    if not requests:
        return {"plans": {}}
    by_uid = {g.profiles[o.agent].user_id: o.agent for o in state["observations"]}
    counters: dict[str, int] = {}

    def emit(agent: str, step: dict[str, Any]) -> None:
        obs = where[agent]
        n = counters.get(agent, 0)
        counters[agent] = n + 1
        g.emit("plan", f"{obs.base}/plan{n}", **obs.where, **step)

    def lesson(agent: str, text: str) -> None:
        g.memory.add_lesson(by_uid[agent], text)

    rt = PlannerRuntime(
        think=g.brain.athink if isinstance(g.brain, Thinker) else None,
        tools_for=lambda a: g.tools_for(by_uid[a]), emit=emit, on_lesson=lesson,
        concurrent=g.concurrent, max_steps=g.role.planner.max_steps,
        max_replans=g.role.planner.max_replans, max_attempts=g.role.planner.max_attempts)
    out = await g.planner.ainvoke(initial_state(requests), context=rt)
    results: dict[str, PlanResult] = out["results"]
    return {"plans": {str(by_uid[a]): r for a, r in results.items()}}


async def _decide(g: AgentGroup, state: AgentState, obs: Observation) -> Action:
    try:
        return await kind_for(obs).decide(g, obs, _recalled(state, _key(obs)))
    except DecisionFailure as f:
        return Failure(purpose=f.purpose, error=f.error, raw=f.raw, attempts=f.attempts)


async def act(state: AgentState, runtime: Runtime[AgentGroup]) -> dict[str, Any]:
    g = runtime.context
    obs = state["observations"]
    actions = await g.amap(lambda o: _decide(g, state, o), obs)
    return {"actions": {_key(o): a for o, a in zip(obs, actions, strict=True)}}


async def remember(state: AgentState, runtime: Runtime[AgentGroup]) -> dict[str, Any]:
    g = runtime.context
    lt = g.long_term
    if lt is not None:
        lt.step += 1
    written: list[tuple[int, str, list[Any]]] = []
    where: dict[int, dict[str, Any]] = {}
    for obs in state["observations"]:
        u, a = obs.agent, state["actions"][_key(obs)]
        uid = g.profiles[u].user_id
        g.emit_calls(uid, obs.base, obs.where)
        where[u] = obs.where
        arm, rnd = str(obs.where.get("arm", "")), int(obs.where.get("round", 0))
        step = obs.base.rsplit("/", 1)[-1]
        recs = []
        writes = () if isinstance(a, Failure) else kind_for(obs).remember(g, obs, a)
        for m in writes:
            g.memory.add(u, m.short)
            if lt is not None:
                recs.append(g.factual_record(u, arm, rnd, step, m.key, m.text, m.rating,
                                             m.watched, m.meta))
            if m.shared is not None and g.shared is not None:
                g.shared.write(uid, m.shared, step=lt.step if lt else 0, round=rnd)
        written.append((u, obs.base, recs))
    if lt is not None:
        await g.write_long_term(written, where)
    return {}


def build_agent_graph() -> CompiledStateGraph[AgentState, AgentGroup, AgentState, AgentState]:
    """Compile the agent graph (the same for every role; the group supplies the parts)."""
    gr: StateGraph[AgentState, AgentGroup, AgentState, AgentState] = StateGraph(
        AgentState, context_schema=AgentGroup)
    for name, fn in (("perceive", perceive), ("recall", recall), ("plan", plan),
                     ("act", act), ("remember", remember)):
        gr.add_node(name, fn)
    gr.add_edge(START, "perceive")
    gr.add_edge("perceive", "recall")
    gr.add_edge("recall", "plan")
    gr.add_edge("plan", "act")
    gr.add_edge("act", "remember")
    gr.add_edge("remember", END)
    return gr.compile()


async def act_batch(
        graph: CompiledStateGraph[AgentState, AgentGroup, AgentState, AgentState],
        group: AgentGroup, observations: list[Observation]) -> list[Action]:
    """One graph step for ``observations`` (agents of ``group``); actions in the same order.

    A coroutine: run it on the population's event loop (``Population.act``)."""
    if not observations:
        return []
    state: AgentState = {"observations": list(observations), "recalled": {},
                         "recalled_lt": {}, "plans": {}, "actions": {}}
    out = await graph.ainvoke(state, context=group)
    return [out["actions"][_key(o)] for o in observations]
