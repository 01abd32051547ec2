"""A population: the agents of every role in one world (one arm), and who plays which role.

Roles are assigned once per run (seeded, by user), so every arm of a paired comparison
meets the same users in the same roles. Each arm gets fresh memories (arms are
counterfactual worlds); brains, LLM clients and planner subgraphs are shared.

The default executor: the factory owns one asyncio event loop (``agents.aio.EventLoop``)
that every arm's population runs its agent graphs on. ``Population.act`` stays
synchronous (the run loop's ``Actor`` seam, also what a Ray actor calls) and blocks until
the step's coroutines are done; inside, the agents of a role wait on the endpoint together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.aio import EventLoop, gather_all
from agents.brains.base import Brain
from agents.graph import AgentState, act_batch, build_agent_graph
from agents.group import AgentGroup, CallLog, Emit, LongTerm
from agents.library import Library
from agents.llm.service import LLMService
from agents.observations import Action, Observation
from agents.profile import UserProfile
from agents.setup import make_brain, make_long_term
from memory.reflection import Reflector
from memory.shared import SharedMemory
from memory.store_process import StoreProcess
from planners import build_planner
from scenarios.loader import LoadedRole
from scenarios.schema import LLMConfig, RoleConfig
from tools.dataset import Interactions
from tools.world import World

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langgraph.graph.state import CompiledStateGraph

    from agents.llm import CallCache, CallRecord, LLMClient
    from memory.long_term import Writes

__all__ = ["USERS", "Population", "PopulationFactory", "assign_roles", "call_event"]

USERS = "users"  # the user agents' clients in the run's LLMService
# Users of a role from which its long-term store writes through a writer process
# (PopulationFactory._store_writes).
STORE_PROCESS_MIN_USERS = 100


def assign_roles(users: Sequence[int], roles: Sequence[LoadedRole], seed: int) -> dict[int, str]:
    """Which role each user plays: shares by largest remainder, or counts; seeded."""
    n = len(users)
    if all(r.count is not None for r in roles):
        counts = [int(r.count or 0) for r in roles]
        if sum(counts) != n:
            raise ValueError(f"population.roles: counts sum to {sum(counts)} but the "
                             f"population has {n} users")
    else:
        exact = [float(r.share or 0.0) * n for r in roles]
        counts = [int(np.floor(x)) for x in exact]
        order = sorted(range(len(roles)), key=lambda k: (-(exact[k] - counts[k]), k))
        for k in order[: n - sum(counts)]:
            counts[k] += 1
    empty = [r.config.name for r, c in zip(roles, counts, strict=True) if c == 0]
    if empty:
        raise ValueError(f"population.roles: role {empty[0]!r} gets none of the {n} users; "
                         "raise its share or the population size")
    perm = np.random.default_rng(np.random.SeedSequence([seed, 17])).permutation(n)
    out: dict[int, str] = {}
    start = 0
    for r, c in zip(roles, counts, strict=True):
        for k in perm[start:start + c]:
            out[int(users[int(k)])] = r.config.name
        start += c
    return out


def _json_safe(x: Any) -> Any:
    # Log-probabilities can be -inf; a trace line stays strict JSON (readable by any tool).
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def call_event(rec: CallRecord, keep_prompts: bool = True) -> dict[str, Any]:
    """The trace fields of one LLM call.

    ``volatile`` holds what differs between a recording and its replay (cache hit,
    latency, attempts; see simulations.record.trace.VOLATILE_FIELDS). ``request`` (the rendered
    prompt) and ``response`` (the raw answer) only when the scenario keeps prompts.
    """
    ev: dict[str, Any] = {
        "purpose": rec.purpose, "kind": rec.kind, "input_tokens": rec.input_tokens,
        "output_tokens": rec.output_tokens, "cost_usd": round(rec.cost_usd, 8), "key": rec.key,
        "volatile": {"cached": rec.cached, "latency_s": round(rec.latency_s, 4),
                     "attempts": rec.attempts}}
    if keep_prompts:
        if rec.request is not None:
            ev["request"] = _json_safe(dict(rec.request))
        if rec.response is not None:
            ev["response"] = _json_safe(dict(rec.response))
    return ev


@dataclass
class Population:
    """The agents of one world, by role."""

    groups: dict[str, AgentGroup]
    role_of: dict[int, str]
    graph: CompiledStateGraph[AgentState, AgentGroup, AgentState, AgentState]
    loop: EventLoop = field(default_factory=EventLoop)

    def act(self, observations: Sequence[Observation]) -> list[Action]:
        """Every observation answered by its agent; one graph step per role (blocks the
        calling thread while the step runs on the population's event loop)."""
        return self.loop.run(self.aact(observations))

    async def aact(self, observations: Sequence[Observation]) -> list[Action]:
        """``act`` as a coroutine. Roles take their turns one after another (their trace
        events stay in role order); the agents of a role act together."""
        by_role: dict[str, list[int]] = {}
        for k, obs in enumerate(observations):
            by_role.setdefault(self.role_of[obs.agent], []).append(k)
        out: list[Action | None] = [None] * len(observations)
        for role, idx in by_role.items():
            acts = await act_batch(self.graph, self.groups[role],
                                   [observations[k] for k in idx])
            for k, a in zip(idx, acts, strict=True):
                out[k] = a
        return [a for a in out if a is not None]


@dataclass
class PopulationFactory:
    """Builds a population per arm and owns what arms share (brains, clients, caches)."""

    roles: tuple[LoadedRole, ...]
    world: World
    profiles: dict[str, list[UserProfile]]  # per role, indexed by user
    users: list[int]
    history: Interactions
    seed: int
    emit: Emit
    llm: LLMConfig | None = None  # the scenario's llm block (with --llm applied)
    run_dir: Path | None = None
    replay: str | None = None
    chat_model: BaseChatModel | None = None
    warm_cache: str | None = None  # record on top of a copy of this run's LLM cache
    max_pages: int = 5
    library: Library | None = None  # default: over world and history, no knowledge graph
    role_worlds: dict[str, World] = field(default_factory=dict)  # a role's own taste space
    keep_prompts: bool = True  # output.keep_prompts: rendered prompts and answers in the trace
    on_llm_call: Callable[[CallRecord], None] | None = None  # progress: every finished call
    loop: EventLoop = field(default_factory=EventLoop)  # the default executor's loop
    role_of: dict[int, str] = field(init=False)
    calls: CallLog = field(default_factory=CallLog, init=False)
    service: LLMService | None = None  # the run's LLM service; default: built here, owned
    brains: dict[str, Brain] = field(default_factory=dict, init=False)
    stores: list[Any] = field(default_factory=list, init=False)
    profiled: set[int] = field(default_factory=set, init=False)
    _own_service: bool = field(default=False, init=False)
    _writer: StoreProcess | None = field(default=None, init=False)
    _new_stores: bool = field(default=False, init=False)  # the writer's folder was empty
    _graph: Any = field(default=None, init=False)
    _library: Library = field(init=False)

    def __post_init__(self) -> None:
        if self.service is None:
            self.service = LLMService(self.run_dir, seed=self.seed, replay=self.replay,
                                      warm_cache=self.warm_cache, chat_model=self.chat_model)
            self._own_service = True
        self.role_of = assign_roles(self.users, self.roles, self.seed)
        self._graph = build_agent_graph()
        everyone = next(iter(self.profiles.values()), [])
        self._library = self.library or Library(
            self.world, self.history, user_ids=tuple(p.user_id for p in everyone),
            user_attrs=tuple(p.attrs for p in everyone), seed=self.seed)
        if any(lr.config.memory.long_term.enabled
               and self._store_writes(lr.config) == "process" for lr in self.roles):
            # Started now, the writer process boots (imports chromadb) while the first
            # arm is set up, instead of when its stores open.
            path = self._store_path()
            assert path is not None  # "process" needs a run folder
            # Nothing in it yet (a new run, or a resume, which starts the stores afresh):
            # every store opened here is new, so none waits for the writer to read back.
            self._new_stores = not any(path.iterdir()) if path.is_dir() else True
            self._writer = StoreProcess.acquire(path)
        if self.chat_model is None and self.replay is None:
            clients = [self.llm_service.client(cfg, caller=USERS, on_call=self._on_call)
                       for lr in self.roles if (cfg := self.llm_of(lr.config)) is not None]
            if clients:  # on the agents' loop, while this thread sets up the first arm
                self.loop.submit(gather_all([c.awarm() for c in clients]))

    def llm_of(self, role: RoleConfig) -> LLMConfig | None:
        """A role's model: its own llm: block, else the scenario's."""
        return role.llm or self.llm if role.brain.kind == "llm" else None

    @property
    def llm_service(self) -> LLMService:
        """The run's LLM service (the same object recommender agents get)."""
        assert self.service is not None  # __post_init__ set it
        return self.service

    @property
    def clients(self) -> dict[str, LLMClient]:
        """The user agents' LLM clients, by model config."""
        return self.llm_service.clients(USERS)

    def shared_cache(self) -> CallCache:
        """The run's LLM cache (created on first use), for others that call models in the
        same run (recommender agents): one cache file, recorded and replayed together."""
        return self.llm_service.cache

    def _on_call(self, rec: CallRecord) -> None:
        self.calls.log(rec.agent, call_event(rec, self.keep_prompts))
        if self.on_llm_call is not None:
            self.on_llm_call(rec)

    def brain(self, role: RoleConfig) -> Brain:
        brain = self.brains.get(role.name)
        if brain is None:
            cfg = self.llm_of(role)
            client = (self.llm_service.client(cfg, caller=USERS, on_call=self._on_call)
                      if cfg is not None else None)
            brain = self.brains[role.name] = make_brain(
                role, self.role_worlds.get(role.name, self.world), client=client,
                max_pages=self.max_pages,
                backend=cfg.backend if cfg else None)
        return brain

    def for_arm(self, arm: str) -> Population:
        """Fresh agents (memories, stores) for one world; shared brains and clients."""
        shared: dict[str, SharedMemory] = {}
        groups: dict[str, AgentGroup] = {}
        for lr in self.roles:
            role = lr.config
            lt_cfg = role.memory.long_term
            long_term = None
            cfg = self.llm_of(role)
            writes = self._store_writes(role)
            new = self._new_stores and writes == "process"
            if lt_cfg.enabled:
                store = make_long_term(lt_cfg, self._store_path(), f"{arm}.{role.name}",
                                       self.llm_of(role) or self.llm, writes=writes,
                                       new=new)
                self.stores.append(store)
                long_term = LongTerm(store, lt_cfg, Reflector(lt_cfg.reflect_every))
            sm = None
            if role.memory.shared:
                sm = shared.get(role.memory.shared)
                if sm is None:
                    store = make_long_term(lt_cfg, self._store_path(),
                                           f"{arm}.shared.{role.memory.shared}",
                                           self.llm_of(role) or self.llm, writes=writes,
                                           new=new)
                    self.stores.append(store)
                    sm = shared[role.memory.shared] = SharedMemory(store, role.memory.shared)
            members = {u: self.profiles[role.name][u] for u, r in self.role_of.items()
                       if r == role.name}
            groups[role.name] = AgentGroup(
                role=role, world=self.role_worlds.get(role.name, self.world),
                profiles=members, brain=self.brain(role),
                planner=build_planner(role.planner.kind, role.planner.steps), emit=self.emit,
                calls=self.calls, seed=self.seed, history=self.history,
                library=self._library, long_term=long_term, shared=sm,
                concurrent=cfg is not None and cfg.concurrency > 1, profiled=self.profiled)
        return Population(groups, self.role_of, self._graph, self.loop)

    def _store_writes(self, role: RoleConfig) -> Writes:
        """How a role's long-term store writes chromadb (``memory.long_term``), the same
        for every arm (decided from the role's model and its number of users).

        Only a role whose LLM calls overlap (concurrency > 1) has calls to hide writes
        behind. With a run folder and at least ``STORE_PROCESS_MIN_USERS`` users, a writer
        process takes chromadb's work (about 1.3 ms a row, holding the GIL) off the agents'
        core; smaller roles write behind their calls on the agents' loop, because the
        process costs about 1.5 s of CPU to start, more than their writes.
        """
        cfg = self.llm_of(role)
        if cfg is None or cfg.concurrency <= 1:
            return "now"
        users = sum(r == role.name for r in self.role_of.values())
        if self.run_dir is not None and users >= STORE_PROCESS_MIN_USERS:
            return "process"
        return "behind"

    def set_replay(self, on: bool) -> None:
        """Every LLM client answers from the cache only (``on``) or records again."""
        self.llm_service.set_replay(on, USERS)

    def _store_path(self) -> Path | None:
        from agents.run_stores import store_dir

        # Registered: a resume rolls it back (agents.run_stores).
        return store_dir(self.run_dir, "memory") if self.run_dir is not None else None

    def close(self) -> None:
        """Close the event loop (and the HTTP clients its calls opened), the stores and the
        cache. Idempotent."""
        clients = list(self.clients.values())

        async def flush_stores() -> None:
            for store in self.stores:
                await store.aflush()

        async def close_clients() -> None:
            for client in clients:
                await client.aclose()

        try:
            if self.loop.running:
                # Write-behind chunks run on this loop (memory.write_behind): finish them
                # before it stops (no timeout: a big step's write may take a while).
                self.loop.run(flush_stores())
        finally:
            self.loop.close(before=close_clients)
            for client in clients:
                client.close()
            try:
                for store in self.stores:
                    store.close()
            finally:
                self.stores.clear()
                writer, self._writer = self._writer, None
                if writer is not None:
                    writer.release()
        if self._own_service:
            self.llm_service.close()
