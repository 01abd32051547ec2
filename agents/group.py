"""The agents of one role in one world: what they own and how their memory works.

An :class:`AgentGroup` holds, for every agent of a role, its profile, its short-term
window, its long-term store (chromadb) with reflection, the shared store it belongs to,
its planner subgraph, its tools and its brain; :mod:`agents.graph` runs them through
perceive -> recall -> plan -> act -> remember. The group is the runtime context of that
graph: nothing here is checkpointed state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.brains.base import Brain
from agents.brains.utility import World
from agents.profile import UserProfile
from memory.long_term import LongTermStore, MemoryRecord
from memory.reflection import Reflector, importance_of
from memory.shared import SharedMemory
from memory.short_term import ShortTermMemory
from scenarios.schema import ConversationConfig, LongTermMemoryConfig, RoleConfig
from tools.dataset import Interactions

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = ["AgentGroup", "CallLog", "Emit", "LongTerm"]

Emit = Callable[..., None]  # TraceWriter.emit(type, id, **fields)


class CallLog:
    """LLM calls waiting to be written to the trace, per agent, in the order made.

    Clients report calls from worker threads; the agent writes them under the step that
    caused them once the step is done.
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
    conversation: ConversationConfig = field(default_factory=ConversationConfig)
    long_term: LongTerm | None = None
    shared: SharedMemory | None = None
    workers: int = 1
    profiled: set[int] = field(default_factory=set)
    memory: ShortTermMemory = field(init=False)
    _tools: dict[int, dict[str, BaseTool]] = field(default_factory=dict, init=False)
    _history_lines: dict[int, list[str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.memory = ShortTermMemory(self.role.memory.short_term_window)

    @property
    def name(self) -> str:
        return self.role.name

    @property
    def thinks(self) -> bool:
        """True when the brain has a language model a planner can think with."""
        return hasattr(self.brain, "think")

    # ------------------------------------------------------------------ concurrency

    def pmap(self, fn: Callable[[Any], Any], xs: Iterable[Any]) -> list[Any]:
        """``map`` over agents, on ``workers`` threads when the brain waits on an endpoint.

        Decisions are independent and seeded per user, so threads change nothing but time.
        """
        items = list(xs)
        if self.workers > 1 and len(items) > 1:
            with ThreadPoolExecutor(min(self.workers, len(items))) as pool:
                return list(pool.map(fn, items))
        return [fn(x) for x in items]

    # ------------------------------------------------------------------ tools

    def tools_for(self, user: int) -> dict[str, BaseTool]:
        tools = self._tools.get(user)
        if tools is None:
            from agents.toolbox import make_tools

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

    def history_lines(self, user: int, n: int) -> list[str]:
        """The user's last ``n`` ratings up to now: before the run, then this run's.

        The simulation clock bounds it: held-out (future) interactions never enter
        ``history``, and the run's own memories are by construction in the past.
        """
        past = self._history_lines.get(user)
        if past is None:
            h = self.history
            rows = np.flatnonzero(h.user == user)
            rows = rows[np.argsort(h.ts[rows], kind="stable")]
            cat = self.world.catalog
            past = self._history_lines[user] = [
                f"watched {cat.titles[int(h.item[r])]} and rated it {h.rating[r]:g}/5"
                for r in rows]
        run = [f"watched {m.get('title', m['item'])} and rated it {m['rating']}/5"
               for m in self.memory.recent(user) if m.get("action") == "watch"]
        return (past + run)[-n:]

    def read_shared(self, user: int, query: str, k: int = 5) -> list[str]:
        if self.shared is None:
            return []
        step = self.long_term.step if self.long_term else 0
        return [f"{h.record.meta.get('author', '?')}: {h.record.text}"
                for h in self.shared.read(query, k, now_step=step)]

    # ------------------------------------------------------------------ memory writes

    def write_long_term(self, step_records: list[tuple[int, str, list[MemoryRecord]]],
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
        # Reflections are LLM calls for LLM brains: run them on the group's workers, then
        # store and trace them in user order so the trace does not depend on timing.
        texts = self.pmap(lambda ub: self._reflection(ub[0], where[ub[0]]), due)
        for (u, base), (recent, text) in zip(due, texts, strict=True):
            self._store_reflection(u, base, where[u], recent, text)

    def _reflection(self, u: int, where: dict[str, Any]) -> tuple[list[MemoryRecord], str]:
        from agents.seeding import user_rng

        lt = self.long_term
        assert lt is not None
        prof = self.profiles[u]
        recent = lt.store.recent(prof.user_id, lt.config.reflect_every)
        rnd = int(where.get("round", 0))
        step = int(where.get("page", where.get("turn", 0)))
        text = self.brain.reflect(prof, [r.text for r in recent],
                                  user_rng(self.seed, u, rnd, 1000 + step))
        return recent, text

    def _store_reflection(self, u: int, base: str, where: dict[str, Any],
                          recent: list[MemoryRecord], text: str) -> None:
        lt = self.long_term
        assert lt is not None
        uid = self.profiles[u].user_id
        self.emit_calls(uid, f"{base}/reflection", where)
        rec = lt.reflector.reflection_record(uid, recent, text, lt.step,
                                             int(where.get("round", 0)))
        lt.store.add([rec])
        self.emit("memory", f"{base}/reflection", **where, op="write", kind="reflection",
                  id=rec.id, text=text)

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
