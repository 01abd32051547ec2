"""The feed environment as a LangGraph graph: one invocation runs one round of sessions
for a whole population against one recommender.

    START -> recommend -> profile -> memory -> plan -> act -> record --+--> interview -> END
                ^                                                     |
                +------------------- next page (someone still browsing)

Every node handles all users still browsing at once, so LangGraph's per-node cost is paid
per page, not per agent-page. State holds only JSON-able data (so a checkpointer can save
it); the recommender, brain, memory, trace writer and data live in the runtime context.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

import numpy as np
import scipy.sparse as sp
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.brains.base import Brain, DecisionFailure, PageObservation, SessionSummary
from agents.profile import UserProfile
from memory.short_term import ShortTermMemory
from planners.static import static_plan
from scenarios.schema import EnvironmentConfig, LongTermMemoryConfig
from simulations.trace import TraceWriter
from tools.dataset import Catalog
from tools.recommenders.base import Recommender

__all__ = ["FeedContext", "FeedState", "Session", "build_feed_graph", "run_round", "user_rng"]


def user_rng(seed: int, user: int, round_: int, page: int) -> np.random.Generator:
    """The random stream of one user on one page, whatever the arm or batch.

    Seeding per (user, round, page) keeps paired A/B arms on the same draws and makes
    results independent of how users are scheduled.
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, user, round_, page])))


class Session(TypedDict):
    pages: int
    shown: int
    watched: list[int]
    ratings: list[int]
    left_early: bool
    ended: bool
    reason: str


class FeedState(TypedDict):
    round: int
    page: int
    active: list[int]
    slates: dict[str, list[int]]
    recalled: dict[str, list[dict[str, Any]]]
    recalled_lt: dict[str, list[str]]
    plans: dict[str, list[str]]
    decisions: dict[str, dict[str, Any]]
    sessions: dict[str, Session]


@dataclass
class FeedContext:
    """Per-arm, per-run objects that must not be checkpointed."""

    arm: str
    seed: int
    env: EnvironmentConfig
    catalog: Catalog
    profiles: list[UserProfile]
    brain: Brain
    memory: ShortTermMemory
    recommender: Recommender
    trace: TraceWriter
    history: sp.csr_matrix  # what each user had seen before the simulation
    shown: dict[int, list[int]] = field(default_factory=dict)  # shown so far in this arm
    withheld: frozenset[int] = frozenset()
    profiled: set[int] = field(default_factory=set)
    watches: list[tuple[int, int, int, int]] = field(default_factory=list)  # u, i, r, round
    on_session_end: Callable[[int], None] = lambda n: None
    long_term: LongTerm | None = None
    workers: int = 1  # threads deciding in parallel (LLM brains waiting on an endpoint)
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls_lock: threading.Lock = field(default_factory=threading.Lock)

    def log_call(self, agent: str, record: dict[str, Any]) -> None:
        """Collect an LLM call for the trace (called from worker threads)."""
        with self.calls_lock:
            self.calls.setdefault(agent, []).append(record)

    def emit_calls(self, agent: str, base: str, **where: Any) -> None:
        """Write the agent's pending LLM calls, in the order the agent made them."""
        with self.calls_lock:
            pending = self.calls.pop(agent, [])
        for n, c in enumerate(pending):
            self.trace.emit("llm_call", f"{base}/llm{n}", arm=self.arm, user=agent, **where, **c)


@dataclass
class LongTerm:
    """Long-term memory of an arm: the store, its settings and a step clock."""

    store: Any  # memory.long_term.LongTermStore (imported lazily: chromadb is heavy)
    config: LongTermMemoryConfig
    reflector: Any  # memory.reflection.Reflector
    step: int = 0


def _ctx(runtime: Runtime[FeedContext]) -> FeedContext:
    return runtime.context


def _exclusion(ctx: FeedContext, users: list[int]) -> sp.csr_matrix:
    """Rows: users; non-zero where an item must not be shown (seen, shown, withheld)."""
    n_items = ctx.catalog.n_items
    hist = ctx.history[users]
    rows = [np.repeat(np.arange(len(users)), np.diff(hist.indptr))]
    cols = [hist.indices]
    for k, u in enumerate(users):
        s = ctx.shown.get(u)
        if s:
            rows.append(np.full(len(s), k))
            cols.append(np.asarray(s))
    if ctx.withheld:
        w = np.fromiter(sorted(ctx.withheld), dtype=np.int64)
        rows.append(np.repeat(np.arange(len(users)), len(w)))
        cols.append(np.tile(w, len(users)))
    r, c = np.concatenate(rows), np.concatenate(cols)
    m = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(users), n_items))
    m.sum_duplicates()
    return m


def _ids(ctx: FeedContext, state: FeedState, u: int) -> tuple[str, str]:
    uid = ctx.profiles[u].user_id
    return uid, f"{ctx.arm}/r{state['round']}/u{uid}/p{state['page']}"


def recommend(state: FeedState, runtime: Runtime[FeedContext]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    page = state["page"] + 1
    users = state["active"]
    k = ctx.env.items_per_page
    recs = ctx.recommender.recommend(np.asarray(users), k, _exclusion(ctx, users))
    slates: dict[str, list[int]] = {}
    active, sessions = [], dict(state["sessions"])
    for u, row in zip(users, recs, strict=True):
        items = [int(i) for i in row if i >= 0]
        if not items:
            sessions[str(u)] = {**sessions[str(u)], "ended": True, "reason": "no_items"}
            continue
        active.append(u)
        slates[str(u)] = items
        ctx.shown.setdefault(u, []).extend(items)
        uid = ctx.profiles[u].user_id
        ctx.trace.emit(
            "page", f"{ctx.arm}/r{state['round']}/u{uid}/p{page}", arm=ctx.arm,
            round=state["round"], user=uid, page=page,
            items=[ctx.catalog.item_ids[i] for i in items],
            recommender=ctx.recommender.name,
        )
    return {"page": page, "active": active, "slates": slates, "sessions": sessions}


def profile(state: FeedState, runtime: Runtime[FeedContext]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    for u in state["active"]:
        if u not in ctx.profiled:
            ctx.profiled.add(u)
            ev = ctx.profiles[u].to_event()
            ctx.trace.emit("profile", f"profile/u{ev['user']}", **ev)
    return {}


def memory(state: FeedState, runtime: Runtime[FeedContext]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    recalled: dict[str, list[dict[str, Any]]] = {}
    recalled_lt: dict[str, list[str]] = {}
    lt = ctx.long_term
    for u in state["active"]:
        recent = list(ctx.memory.recent(u))
        recalled[str(u)] = recent
        uid, base = _ids(ctx, state, u)
        where = {"arm": ctx.arm, "round": state["round"], "user": uid, "page": state["page"]}
        if recent:
            ctx.trace.emit("memory", f"{base}/memory", **where, op="read", kind="short_term",
                           recalled=[f"{m['action']}:{m['item']}" for m in recent])
        if lt is not None and lt.config.top_k:
            query = "; ".join(
                f"{ctx.catalog.titles[i]} ({', '.join(ctx.catalog.genres[i])})"
                for i in state["slates"][str(u)])
            w = lt.config.weights
            hits = lt.store.retrieve(uid, query, lt.config.top_k, now_step=lt.step,
                                     weights=(w.relevance, w.recency, w.importance),
                                     decay=lt.config.recency_decay)
            recalled_lt[str(u)] = [h.record.text for h in hits]
            if hits:
                ctx.trace.emit("memory", f"{base}/memory_lt", **where, op="read",
                               kind="long_term", query=query,
                               recalled=[h.record.id for h in hits],
                               scores=[round(h.score, 4) for h in hits])
    return {"recalled": recalled, "recalled_lt": recalled_lt}


def plan(state: FeedState, runtime: Runtime[FeedContext]) -> dict[str, Any]:
    return {"plans": {str(u): list(static_plan(len(state["slates"][str(u)])))
                      for u in state["active"]}}


def _decide(ctx: FeedContext, state: FeedState, u: int) -> dict[str, Any]:
    key = str(u)
    obs = PageObservation(
        profile=ctx.profiles[u], round=state["round"], page=state["page"],
        items=tuple(state["slates"][key]), memory=tuple(state["recalled"].get(key, ())),
        plan=tuple(state["plans"][key]), recalled=tuple(state["recalled_lt"].get(key, ())),
    )
    try:
        decision = ctx.brain.decide_page(obs, user_rng(ctx.seed, u, state["round"],
                                                       state["page"]))
    except DecisionFailure as f:
        return {"failure": {"purpose": f.purpose, "error": f.error, "raw": f.raw,
                            "attempts": f.attempts}}
    return asdict(decision)


def act(state: FeedState, runtime: Runtime[FeedContext]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    users = state["active"]
    if ctx.workers > 1 and len(users) > 1:
        # Decisions are independent and seeded per user, so threads change nothing but time.
        with ThreadPoolExecutor(min(ctx.workers, len(users))) as pool:
            results = list(pool.map(lambda u: _decide(ctx, state, u), users))
    else:
        results = [_decide(ctx, state, u) for u in users]
    return {"decisions": {str(u): d for u, d in zip(users, results, strict=True)}}


def record(state: FeedState, runtime: Runtime[FeedContext]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    cat, rnd, page = ctx.catalog, state["round"], state["page"]
    sessions = dict(state["sessions"])
    still = []
    new_memories: list[tuple[int, dict[str, Any], str]] = []
    for u in state["active"]:
        key = str(u)
        d = state["decisions"][key]
        uid, base = _ids(ctx, state, u)
        where = {"round": rnd, "page": page}
        ctx.emit_calls(uid, base, **where)
        s: Session = {**sessions[key]}
        if "failure" in d:
            ctx.trace.emit("decision_failure", f"{base}/failure", arm=ctx.arm, user=uid,
                           **where, brain=ctx.brain.name, **d["failure"])
            s["pages"], s["ended"], s["reason"] = page, True, "llm_failure"
            sessions[key] = s
            continue
        s["pages"], s["shown"] = page, s["shown"] + len(d["items"])
        for pos, dd in enumerate(d["items"], start=1):
            it = dd["item"]
            iid = cat.item_ids[it]
            action = "watch" if dd["watch"] else "skip"
            ctx.trace.emit(
                "decision", f"{base}/i{iid}", arm=ctx.arm, round=rnd, user=uid, page=page,
                position=pos, item=iid, genres=list(cat.genres[it]), action=action,
                rating=dd["rating"], reason=dd["reason"], inputs=dd["inputs"],
                brain=ctx.brain.name,
            )
            ctx.memory.add(u, {"action": action, "item": iid, "title": cat.titles[it],
                               "genres": list(cat.genres[it]), "rating": dd["rating"],
                               "round": rnd, "page": page})
            if ctx.long_term is not None:
                new_memories.append((u, dd, action))
            if dd["watch"]:
                s["watched"] = [*s["watched"], it]
                s["ratings"] = [*s["ratings"], int(dd["rating"])]
                ctx.watches.append((u, it, int(dd["rating"]), rnd))
        last_page = page >= ctx.env.max_pages
        action = "leave" if d["leave"] else ("end" if last_page else "next_page")
        ctx.trace.emit(
            "decision", f"{base}/exit", arm=ctx.arm, round=rnd, user=uid, page=page,
            action=action, feeling=d["feeling"], inputs=d["inputs"], brain=ctx.brain.name,
        )
        if d["leave"] or last_page:
            s["left_early"] = bool(d["leave"]) and not last_page
            s["ended"] = True
            s["reason"] = "left" if s["left_early"] else "last_page"
        else:
            still.append(u)
        sessions[key] = s
    if ctx.long_term is not None:
        _write_long_term(ctx, ctx.long_term, state, new_memories)
    ctx.trace.flush()
    return {"active": still, "sessions": sessions}


def _write_long_term(ctx: FeedContext, lt: LongTerm, state: FeedState,
                     new: list[tuple[int, dict[str, Any], str]]) -> None:
    """Factual memories of this page for every user, then any reflections that are due."""
    from memory.long_term import MemoryRecord
    from memory.reflection import importance_of

    cat, rnd, page = ctx.catalog, state["round"], state["page"]
    lt.step += 1
    records = []
    per_user: dict[int, list[str]] = {}
    for u, dd, action in new:
        uid, it = ctx.profiles[u].user_id, dd["item"]
        genres = ", ".join(cat.genres[it])
        text = (f"watched '{cat.titles[it]}' ({genres}) and rated it {dd['rating']}/5"
                if action == "watch" else f"skipped '{cat.titles[it]}' ({genres})")
        rid = f"{ctx.arm}/{uid}/r{rnd}/p{page}/{cat.item_ids[it]}"
        records.append(MemoryRecord(
            id=rid, agent=uid, text=text, kind="factual",
            importance=importance_of("factual", dd["rating"], action == "watch"),
            step=lt.step, round=rnd, meta={"item": cat.item_ids[it], "arm": ctx.arm}))
        per_user.setdefault(u, []).append(rid)
    if records:
        lt.store.add(records)
    for u, ids in per_user.items():
        uid = ctx.profiles[u].user_id
        base = f"{ctx.arm}/r{rnd}/u{uid}/p{page}"
        ctx.trace.emit("memory", f"{base}/memory_write", arm=ctx.arm, round=rnd, user=uid,
                       page=page, op="write", kind="factual", ids=ids)
        if lt.reflector.note(uid, len(ids)):
            recent = lt.store.recent(uid, lt.config.reflect_every)
            text = ctx.brain.reflect(ctx.profiles[u], [r.text for r in recent],
                                     user_rng(ctx.seed, u, rnd, 1000 + page))
            ctx.emit_calls(uid, f"{base}/reflection", round=rnd, page=page)
            rec = lt.reflector.reflection_record(uid, recent, text, lt.step, rnd)
            lt.store.add([rec])
            ctx.trace.emit("memory", f"{base}/reflection", arm=ctx.arm, round=rnd, user=uid,
                           page=page, op="write", kind="reflection", id=rec.id, text=text)


def interview(state: FeedState, runtime: Runtime[FeedContext]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    rnd = state["round"]
    for key in sorted(state["sessions"], key=int):
        u = int(key)
        s = state["sessions"][key]
        uid = ctx.profiles[u].user_id
        base = f"{ctx.arm}/r{rnd}/u{uid}"
        if s["pages"] > 0:
            summary = SessionSummary(
                profile=ctx.profiles[u], round=rnd, pages=s["pages"], shown=s["shown"],
                watched=tuple(s["watched"]), ratings=tuple(s["ratings"]),
                left_early=s["left_early"],
            )
            try:
                ans = ctx.brain.interview(summary, user_rng(ctx.seed, u, rnd, 0))
            except DecisionFailure as f:
                ctx.emit_calls(uid, f"{base}/interview", round=rnd)
                ctx.trace.emit("decision_failure", f"{base}/interview/failure", arm=ctx.arm,
                               round=rnd, user=uid, brain=ctx.brain.name, purpose=f.purpose,
                               error=f.error, raw=f.raw, attempts=f.attempts)
            else:
                ctx.emit_calls(uid, f"{base}/interview", round=rnd)
                ctx.trace.emit(
                    "interview", f"{base}/interview", arm=ctx.arm, round=rnd, user=uid,
                    satisfaction=ans.satisfaction, reason=ans.reason, inputs=ans.inputs,
                    brain=ctx.brain.name,
                )
        ctx.trace.emit(
            "session_end", f"{base}/end", arm=ctx.arm, round=rnd, user=uid, pages=s["pages"],
            shown=s["shown"], watched=len(s["watched"]), left_early=s["left_early"],
            reason=s["reason"] or "last_page",
        )
    ctx.trace.flush()
    ctx.on_session_end(len(state["sessions"]))
    return {"active": []}


def _next(state: FeedState, runtime: Runtime[FeedContext]) -> str:
    if state["active"] and state["page"] < runtime.context.env.max_pages:
        return "recommend"
    return "interview"


def build_feed_graph() -> CompiledStateGraph[FeedState, FeedContext, FeedState, FeedState]:
    """Build and compile the page-by-page feed graph (no checkpointer yet)."""
    g: StateGraph[FeedState, FeedContext, FeedState, FeedState] = StateGraph(
        FeedState, context_schema=FeedContext
    )
    for name, fn in (("recommend", recommend), ("profile", profile), ("memory", memory),
                     ("plan", plan), ("act", act), ("record", record),
                     ("interview", interview)):
        g.add_node(name, fn)
    g.add_edge(START, "recommend")
    g.add_edge("recommend", "profile")
    g.add_edge("profile", "memory")
    g.add_edge("memory", "plan")
    g.add_edge("plan", "act")
    g.add_edge("act", "record")
    g.add_conditional_edges("record", _next, ["recommend", "interview"])
    g.add_edge("interview", END)
    return g.compile()


def run_round(
    graph: CompiledStateGraph[FeedState, FeedContext, FeedState, FeedState],
    ctx: FeedContext,
    users: list[int],
    round_: int,
) -> FeedState:
    """Run one round of sessions for ``users``; returns the final state."""
    sessions: dict[str, Session] = {
        str(u): {"pages": 0, "shown": 0, "watched": [], "ratings": [], "left_early": False,
                 "ended": False, "reason": ""}
        for u in users
    }
    state: FeedState = {"round": round_, "page": 0, "active": list(users), "slates": {},
                        "recalled": {}, "recalled_lt": {}, "plans": {}, "decisions": {},
                        "sessions": sessions}
    out = graph.invoke(state, context=ctx,
                       config={"recursion_limit": 7 * ctx.env.max_pages + 10})
    return out  # type: ignore[return-value]
