"""An agent is a role compiled into a LangGraph graph:

    START -> perceive -> recall -> plan -> act -> remember -> END

- ``perceive``: take the environment's observations (typed, see agents.observations);
  a user's profile enters the trace the first time it is seen;
- ``recall``: short-term window, long-term store (chromadb), lessons, shared notes;
- ``plan``: the role's planner subgraph (static / reactive / preactive / reflective);
- ``act``: the brain turns observation + memories + plan into a typed action;
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
from pydantic import TypeAdapter

from agents.brains.base import (
    ConversationView,
    DecisionFailure,
    PageObservation,
    SessionSummary,
)
from agents.brains.prompts import item_line
from agents.group import AgentGroup
from agents.observations import (
    Action,
    ConversationOpen,
    ConversationTurn,
    Failure,
    FeedPage,
    InterviewAction,
    InterviewRequest,
    ItemChoice,
    Observation,
    PageAction,
    Utterance,
    Verdict,
)
from agents.seeding import user_rng
from planners import PlannerRuntime, PlanRequest, PlanResult, initial_state

__all__ = ["AgentState", "act_batch", "build_agent_graph"]

_ACTION: TypeAdapter[Action] = TypeAdapter(Action)


class AgentState(TypedDict):
    observations: list[Observation]
    recalled: dict[str, list[dict[str, Any]]]  # short-term, per agent
    recalled_lt: dict[str, list[str]]  # long-term + shared + lessons, per agent
    plans: dict[str, PlanResult]
    actions: dict[str, Action]


def _key(obs: Observation) -> str:
    return str(obs.agent)


def _query(g: AgentGroup, obs: Observation) -> str | None:
    """What the agent looks for in its memory at this step."""
    cat = g.world.catalog
    if isinstance(obs, FeedPage):
        return "; ".join(f"{cat.titles[i]} ({', '.join(cat.genres[i])})" for i in obs.items)
    if isinstance(obs, ConversationOpen | ConversationTurn):
        return f"{cat.titles[obs.target]} ({', '.join(cat.genres[obs.target])})"
    return None


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
        query = _query(g, obs)
        if query is not None and lt is not None and lt.config.top_k:
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


def _request(g: AgentGroup, obs: Observation, state: AgentState) -> PlanRequest | None:
    """The planning problem of a step (interviews and openings need no plan)."""
    cat, prof = g.world.catalog, g.profiles[obs.agent]
    key = _key(obs)
    if isinstance(obs, FeedPage):
        goal = (f"page {obs.page} of at most {obs.max_pages} of a movie feed: decide which "
                "of the items to watch")
        items = obs.items
    elif isinstance(obs, ConversationTurn):
        goal = (f"turn {obs.turn} of a conversation: find the movie you are looking for "
                f"({item_line(cat, obs.target)}) among the suggestions")
        items = obs.recommended
    else:
        return None
    memories = [f"{m['action']} {m.get('title', m['item'])}" for m in state["recalled"][key]]
    return PlanRequest(
        agent=prof.user_id, base=obs.base, goal=goal,
        profile=(f"likes {', '.join(prof.liked_genres) or 'many genres'}; dislikes "
                 f"{', '.join(prof.disliked_genres) or 'nothing in particular'}"),
        items=[(cat.item_ids[i], item_line(cat, i, float(g.world.item_mean[i]))) for i in items],
        memories=memories + state["recalled_lt"][key], lessons=list(g.memory.lessons(obs.agent)),
        history=g.history_lines(obs.agent, 10) if g.thinks else [],
    )


async def plan(state: AgentState, runtime: Runtime[AgentGroup]) -> dict[str, Any]:
    g = runtime.context
    requests: list[PlanRequest] = []
    where: dict[str, Observation] = {}
    for obs in state["observations"]:
        req = _request(g, obs, state)
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
        think=getattr(g.brain, "athink", None) or getattr(g.brain, "think", None),
        tools_for=lambda a: g.tools_for(by_uid[a]), emit=emit, on_lesson=lesson,
        concurrent=g.concurrent, max_steps=g.role.planner.max_steps,
        max_replans=g.role.planner.max_replans, max_attempts=g.role.planner.max_attempts)
    out = await g.planner.ainvoke(initial_state(requests), context=rt)
    results: dict[str, PlanResult] = out["results"]
    return {"plans": {str(by_uid[a]): r for a, r in results.items()}}


def _shortlist(g: AgentGroup, p: PlanResult | None) -> tuple[int, ...] | None:
    if p is None or p.shortlist is None:
        return None
    return tuple(g.world.catalog.index[i] for i in p.shortlist)


async def _decide(g: AgentGroup, state: AgentState, obs: Observation) -> Action:
    key, u = _key(obs), obs.agent
    prof = g.profiles[u]
    p = state["plans"].get(key)
    try:
        if isinstance(obs, FeedPage):
            d = await g.ask_brain("decide_page", PageObservation(
                profile=prof, round=obs.round, page=obs.page, items=tuple(obs.items),
                memory=tuple(state["recalled"][key]), plan=tuple(p.steps) if p else (),
                recalled=tuple(state["recalled_lt"][key]), guidance=p.guidance if p else "",
                shortlist=_shortlist(g, p)), user_rng(g.seed, u, obs.round, obs.page))
            return PageAction(
                items=[ItemChoice(item=x.item, watch=x.watch, rating=x.rating, reason=x.reason,
                                  inputs=x.inputs) for x in d.items],
                leave=d.leave, feeling=d.feeling,
                feeling_source="model" if d.inputs.get("feeling_source") == "model"
                else "computed",
                inputs={k: v for k, v in d.inputs.items() if k != "feeling_source"})
        if isinstance(obs, InterviewRequest):
            a = await g.ask_brain("interview", SessionSummary(
                profile=prof, round=obs.round, pages=obs.pages, shown=obs.shown,
                watched=tuple(obs.watched), ratings=tuple(obs.ratings),
                left_early=obs.left_early), user_rng(g.seed, u, obs.round, 0))
            return InterviewAction(satisfaction=a.satisfaction, reason=a.reason,
                                   inputs=a.inputs)
        conv = g.conversation
        view = ConversationView(
            profile=prof, round=obs.round, turn=getattr(obs, "turn", 0), target=obs.target,
            said=tuple(getattr(obs, "said", ())),
            recommended=tuple(getattr(obs, "recommended", ())),
            reply=getattr(obs, "reply", ""), patience=conv.patience,
            noise=conv.description_noise, memory=tuple(state["recalled"][key]),
            guidance=p.guidance if p else "")
        rng = user_rng(g.seed, u, obs.round, 10_000 + view.turn)
        if isinstance(obs, ConversationOpen):
            s = await g.ask_brain("describe", view, rng)
            return Utterance(text=s.text, inputs=s.inputs)
        v = await g.ask_brain("judge", view, rng)
        return Verdict(accept=v.accept, give_up=v.give_up, feedback=v.feedback,
                       inputs=v.inputs)
    except DecisionFailure as f:
        return Failure(purpose=f.purpose, error=f.error, raw=f.raw, attempts=f.attempts)


async def act(state: AgentState, runtime: Runtime[AgentGroup]) -> dict[str, Any]:
    g = runtime.context
    obs = state["observations"]
    actions = await g.amap(lambda o: _decide(g, state, o), obs)
    return {"actions": {_key(o): a for o, a in zip(obs, actions, strict=True)}}


async def remember(state: AgentState, runtime: Runtime[AgentGroup]) -> dict[str, Any]:
    g = runtime.context
    cat = g.world.catalog
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
        if isinstance(obs, FeedPage) and isinstance(a, PageAction):
            for x in a.items:
                it = x.item
                action = "watch" if x.watch else "skip"
                if x.watch:
                    g.note_watch(u, it, x.rating)
                g.memory.add(u, {"action": action, "item": cat.item_ids[it],
                                 "title": cat.titles[it], "genres": list(cat.genres[it]),
                                 "rating": x.rating, "round": rnd, "page": obs.page})
                if lt is not None:
                    genres = ", ".join(cat.genres[it])
                    text = (f"watched '{cat.titles[it]}' ({genres}) and rated it {x.rating}/5"
                            if x.watch else f"skipped '{cat.titles[it]}' ({genres})")
                    recs.append(g.factual_record(u, arm, rnd, step, cat.item_ids[it], text,
                                                 x.rating, x.watch, {"item": cat.item_ids[it]}))
                if g.shared is not None and x.watch and (x.rating or 0) >= 4:
                    g.shared.write(uid, f"liked '{cat.titles[it]}' ({x.rating}/5)",
                                   step=lt.step if lt else 0, round=rnd)
        elif isinstance(a, Utterance | Verdict):
            text = a.text if isinstance(a, Utterance) else (
                f"accepted {cat.item_ids[a.accept]}" if a.accept is not None else a.feedback)
            g.memory.add(u, {"action": "said", "item": text[:80], "title": text[:200],
                             "round": rnd, "turn": obs.where.get("turn")})
            if lt is not None:
                recs.append(g.factual_record(u, arm, rnd, step, "said", f"I said: {text}",
                                             None, False, {}))
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
