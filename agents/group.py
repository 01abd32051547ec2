"""The agents of one role in one world: what they own and how their memory works.

An :class:`AgentGroup` holds, for every agent of a role, its profile, its short-term
window, its long-term store (chromadb) with reflection, the shared store it belongs to,
its planner subgraph, its tools and its brain; :mod:`agents.graph` runs them through
perceive -> recall -> plan -> act -> remember. The group is the runtime context of that
graph: nothing here is checkpointed state.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from agents.aio import gather
from agents.brains.base import Brain
from agents.brains.capabilities import Reflector as ReflectorBrain
from agents.brains.capabilities import Thinker
from agents.library import Library
from agents.profile import UserProfile
from agents.toolbox import make_tools
from memory.long_term import LongTermStore, MemoryRecord
from memory.reflection import Reflector, importance_of
from memory.shared import SharedMemory
from memory.short_term import ShortTermMemory
from scenarios.schema import LongTermMemoryConfig, RoleConfig
from tools.dataset import Interactions
from tools.history import Rating
from tools.world import World

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = ["AgentGroup", "CallLog", "Emit", "LongTerm"]

Emit = Callable[..., None]  # TraceWriter.emit(type, id, **fields)


class CallLog:
    """LLM calls waiting to be written to the trace, per agent, in the order made.

    Clients report calls as they finish (from the event loop, or from the calling thread
    of a sync call); the agent writes them under the step that caused them once the step
    is done, so their order in the trace is the agent's own order, not the finishing order
    across agents.
    """

    def __init__(self) -> None:
        self._calls: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def log(self, agent: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._calls.setdefault(agent, []).append(record)

    def pop(self, agent: str) -> list[dict[str, Any]]:
        with self._lock:
            return self._calls.pop(agent, [])


@dataclass
class LongTerm:
    """Long-term memory of a group in one world: the store, its settings, a step clock."""

    store: LongTermStore
    config: LongTermMemoryConfig
    reflector: Reflector
    step: int = 0


@dataclass
class AgentGroup:
    """Everything the agents of one role own (the agent graph's runtime context)."""

    role: RoleConfig
    world: World
    profiles: dict[int, UserProfile]
    brain: Brain
    planner: Any  # compiled planner subgraph (planners.build_planner)
    emit: Emit
    calls: CallLog
    seed: int
    history: Interactions  # what every user did before the simulation started
    library: Library  # what tools consult (catalogue indexes, knowledge graph, the past)
    long_term: LongTerm | None = None
    shared: SharedMemory | None = None
    concurrent: bool = False  # gather the agents' LLM calls (LLM brains); see amap
    profiled: set[int] = field(default_factory=set)
    memory: ShortTermMemory = field(init=False)
    _tools: dict[int, dict[str, BaseTool]] = field(default_factory=dict, init=False)
    _run: dict[int, list[Rating]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.memory = ShortTermMemory(self.role.memory.short_term_window)
        self.hold_writes(True)  # released only while LLM calls are in flight (amap)

    @property
    def name(self) -> str:
        return self.role.name

    @cached_property
    def thinks(self) -> bool:
        """True when the brain has a language model a planner can think with."""
        return isinstance(self.brain, Thinker)

    # ------------------------------------------------------------------ concurrency

    async def amap(self, fn: Callable[[Any], Awaitable[Any]], xs: Iterable[Any]) -> list[Any]:
        """``[await fn(x) for x in xs]``: all at once when the brain waits on an endpoint
        (``concurrent``), the LLM client's limits deciding how many calls are in flight;
        in order otherwise (a numeric brain has nothing to wait for).

        Decisions are independent and seeded per user, so concurrency changes nothing but
        time; results come back in the order of ``xs``. While the calls are in flight the
        stores' queued chromadb writes run (write-behind), hidden behind the waiting.
        """
        if not self.concurrent:
            return await gather(fn, xs, concurrent=False)
        self.hold_writes(False)
        try:
            return await gather(fn, xs, concurrent=True)
        finally:
            self.hold_writes(True)

    # ------------------------------------------------------------------ tools

    def tools_for(self, user: int) -> dict[str, BaseTool]:
        tools = self._tools.get(user)
        if tools is None:
            tools = self._tools[user] = make_tools(self, user, list(self.role.tools))
        return tools

    def search_memory(self, user: int, query: str, k: int = 5) -> list[str]:
        """Memory retrieval as a tool: long-term store if any, else the short-term window."""
        lt = self.long_term
        out = [f"lesson: {x}" for x in self.memory.lessons(user)]
        if lt is not None:
            w = lt.config.weights
            hits = lt.store.retrieve(self.profiles[user].user_id, query, k, now_step=lt.step,
                                     weights=(w.relevance, w.recency, w.importance),
                                     decay=lt.config.recency_decay)
            return out + [h.record.text for h in hits]
        words = {w.lower() for w in query.split() if len(w) > 2}
        for m in reversed(self.memory.recent(user)):
            text = f"{m['action']} {m.get('title', m['item'])}" + (
                f", rated {m['rating']}" if m.get("rating") else "")
            if not words or words & {w.lower() for w in text.split()}:
                out.append(text)
        return out[:k + len(self.memory.lessons(user))]

    def note_watch(self, user: int, item: int, rating: int | None) -> None:
        """Log a watch of this run (the user tools' and prompts' view of the present)."""
        self._run.setdefault(user, []).append(
            Rating(item, float(rating) if rating is not None else None))

    def run_ratings(self, user: int) -> list[Rating]:
        """What the user watched during this run so far, oldest first."""
        return list(self._run.get(user, ()))

    def history_lines(self, user: int, n: int) -> list[str]:
        """The user's last ``n`` ratings up to now: before the run, then this run's.

        The simulation clock bounds it: held-out (future) interactions never enter
        ``history``, and the run's own watches are by construction in the past.
        """
        cat = self.world.catalog
        rows = self.library.histories().ratings(user)[-n:] + self.run_ratings(user)
        return [f"watched {cat.titles[r.item]}" + (
            f" and rated it {r.rating:g}/5" if r.rating is not None else "")
            for r in rows][-n:] if n > 0 else []

    def read_shared(self, user: int, query: str, k: int = 5) -> list[str]:
        if self.shared is None:
            return []
        step = self.long_term.step if self.long_term else 0
        return [f"{h.record.meta.get('author', '?')}: {h.record.text}"
                for h in self.shared.read(query, k, now_step=step)]

    # ------------------------------------------------------------------ memory writes

    def hold_writes(self, hold: bool) -> None:
        """Pause or resume the stores' write-behind (chromadb writes run during a step,
        while the agents' LLM calls are in flight, not between steps)."""
        for store in {id(s): s for s in (self.long_term and self.long_term.store,
                                         self.shared and self.shared.store) if s}.values():
            store.hold_writes(hold)

    async def write_long_term(self, step_records: list[tuple[int, str, list[MemoryRecord]]],
                        where: dict[int, dict[str, Any]]) -> None:
        """Store this step's factual memories, then any reflections that are due.

        Args:
            step_records: (user, trace base, records) for every agent that acted.
            where: per user, the trace fields of its step.
        """
        lt = self.long_term
        if lt is None:
            return
        records = [r for _, _, recs in step_records for r in recs]
        if records:
            lt.store.add(records)
        due = []
        for u, base, recs in step_records:
            if not recs:
                continue
            uid = self.profiles[u].user_id
            self.emit("memory", f"{base}/memory_write", **where[u], op="write",
                      kind="factual", ids=[r.id for r in recs])
            if lt.reflector.note(uid, len(recs)):
                due.append((u, base))
        # Reflections are LLM calls for LLM brains: gather them, then store them in one
        # write (a chromadb upsert per reflection made the endpoint wait on the disk) and
        # trace them in user order, so the trace does not depend on timing.
        texts = await self.amap(lambda ub: self._reflection(ub[0], where[ub[0]]), due)
        recs = [lt.reflector.reflection_record(
            self.profiles[u].user_id, recent, text, lt.step, int(where[u].get("round", 0)))
            for (u, _), (recent, text) in zip(due, texts, strict=True)]
        if recs:
            lt.store.add(recs)
        for (u, base), rec, (_, text) in zip(due, recs, texts, strict=True):
            self.emit_calls(self.profiles[u].user_id, f"{base}/reflection", where[u])
            self.emit("memory", f"{base}/reflection", **where[u], op="write",
                      kind="reflection", memory_id=rec.id, text=text)

    async def _reflection(self, u: int,
                          where: dict[str, Any]) -> tuple[list[MemoryRecord], str]:
        from agents.seeding import user_rng

        lt = self.long_term
        assert lt is not None
        prof = self.profiles[u]
        recent = lt.store.recent(prof.user_id, lt.config.reflect_every)
        rnd = int(where.get("round", 0))
        step = int(where.get("page", where.get("turn", 0)))
        brain = self.brain
        assert isinstance(brain, ReflectorBrain), f"{self.name}: the brain cannot reflect"
        text = await brain.areflect(prof, [r.text for r in recent],
                                    user_rng(self.seed, u, rnd, 1000 + step))
        return recent, text

    def factual_record(self, u: int, arm: str, rnd: int, step: str, key: str, text: str,
                       rating: int | None, watched: bool, meta: dict[str, Any]) -> MemoryRecord:
        lt = self.long_term
        assert lt is not None
        uid = self.profiles[u].user_id
        return MemoryRecord(
            id=f"{arm}/{uid}/r{rnd}/{step}/{key}", agent=uid, text=text, kind="factual",
            importance=importance_of("factual", rating, watched), step=lt.step, round=rnd,
            meta={"arm": arm, **meta})

    def emit_calls(self, agent: str, base: str, where: dict[str, Any]) -> None:
        """Write the agent's pending LLM calls under ``base``."""
        for n, c in enumerate(self.calls.pop(agent)):
            self.emit("llm_call", f"{base}/llm{n}", **where, **c)
