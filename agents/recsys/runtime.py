"""What recommender agents of one run share, and how one role talks to its model.

``RecRuntime`` holds the recommender agents' clients of the run's ``LLMService`` (the
object user agents use: one cache, one set of limits and budget per model config), the
teams' shared memories and the trace: every LLM call is written as an ``llm_call`` event under
the step that made it. ``RecBrain`` is one role's access to its model: JSON answers of a
pydantic schema (chat models: native structured output or validated text, repaired a
bounded number of times), next-token scores over fixed options (base models), or free
text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from agents.library import Library
from agents.llm.service import LLMService
from agents.population import call_event
from scenarios.recsys import RecommenderRole
from scenarios.schema import LLMConfig

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agents.llm import CallCache, CallRecord, LLMClient, StructuredResult
    from memory.shared import SharedMemory

__all__ = ["RECOMMENDERS", "Emit", "RecBrain", "RecRuntime", "no_emit"]

RECOMMENDERS = "recommenders"  # the default caller name of recommender agents' clients

T = TypeVar("T", bound=BaseModel)
Emit = Callable[..., None]  # TraceWriter.emit(type, id, **fields)


def no_emit(type_: str, id_: str, **fields: Any) -> None:
    """The default trace writer: writes nothing."""


@dataclass
class RecRuntime:
    """Clients, caches, shared memories and the trace of a run's recommender agents."""

    library: Library
    seed: int
    run_dir: Path
    llm: LLMConfig | None = None
    replay: str | None = None
    chat_model: BaseChatModel | None = None
    emit: Emit = no_emit
    cache: CallCache | None = None  # share another component's cache (without a service)
    service: LLMService | None = None  # the run's LLM service (default: one of its own)
    caller: str = RECOMMENDERS  # this runtime's clients in the service (one per agent)
    keep_prompts: bool = True
    on_llm_call: Callable[[CallRecord], None] | None = None  # progress: every finished call
    shared: dict[str, SharedMemory] = field(default_factory=dict)
    _own_service: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _base: str = "agent"
    _where: dict[str, Any] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)

    def llm_of(self, role: RecommenderRole) -> LLMConfig:
        cfg = role.llm or self.llm
        if cfg is None:
            raise ValueError(f"recommender role {role.name!r} has no llm: block and none was "
                             "given (scenario llm: or --llm)")
        return cfg

    def __post_init__(self) -> None:
        if self.service is None:
            self.service = LLMService(self.run_dir, seed=self.seed, replay=self.replay,
                                      chat_model=self.chat_model, cache=self.cache)
            self._own_service = True

    @property
    def llm_service(self) -> LLMService:
        assert self.service is not None  # __post_init__ set it
        return self.service

    @property
    def clients(self) -> dict[str, LLMClient]:
        """The recommender agents' clients, by model config."""
        return self.llm_service.clients(self.caller)

    def client(self, cfg: LLMConfig) -> LLMClient:
        return self.llm_service.client(cfg, caller=self.caller, on_call=self._on_call)

    def note(self, type_: str, id_: str, where: dict[str, Any], **fields: Any) -> None:
        """A trace event at ``where`` (arm, round, user...); ``fields`` win on clashes."""
        self.emit(type_, id_, **{**where, **fields})

    @contextmanager
    def filed(self, base: str, where: dict[str, Any]) -> Iterator[None]:
        """File LLM calls made inside under trace-id prefix ``base`` and location ``where``
        (agents answer one request at a time, so calls land under the step that made
        them)."""
        prev, self._base, prev_where, self._where = self._base, base, self._where, where
        try:
            yield
        finally:
            self._base, self._where = prev, prev_where

    def _on_call(self, rec: CallRecord) -> None:
        with self._lock:
            n = self._counts.get(self._base, 0)
            self._counts[self._base] = n + 1
        self.note("llm_call", f"{self._base}/llm{n}", self._where, agent=rec.agent,
                  **call_event(rec, self.keep_prompts))
        if self.on_llm_call is not None:
            self.on_llm_call(rec)

    def shared_memory(self, name: str, embedder: str) -> SharedMemory:
        from agents.run_stores import store_dir
        from memory.embedders import make_embedder
        from memory.long_term import LongTermStore
        from memory.shared import SharedMemory

        with self._lock:
            sm = self.shared.get(name)
            if sm is None:
                # Registered: a resume rolls the team's lessons back (agents.run_stores).
                store = LongTermStore(store_dir(self.run_dir, "agent_memory"),
                                      make_embedder(embedder),  # type: ignore[arg-type]
                                      collection=f"team.{name}")
                sm = self.shared[name] = SharedMemory(store, name)
            return sm

    def usage(self) -> tuple[int, int, float]:
        return self.llm_service.usage(self.caller)

    def close(self) -> None:
        for sm in self.shared.values():
            sm.store.close()
        self.shared.clear()
        if self._own_service:
            self.llm_service.close()


class RecBrain:
    """One role's model: ``structured`` (chat models) or ``scored`` (base models)."""

    def __init__(self, role: RecommenderRole, rt: RecRuntime, agent: str) -> None:
        self.role, self.agent = role, agent
        cfg = rt.llm_of(role)
        mode = role.brain.decision_mode
        if mode == "auto":
            mode = "scored" if cfg.backend == "local" else "structured"
        self.mode = mode
        if mode == "scored":  # only free text is generated: cap it
            cfg = cfg.model_copy(update={"max_tokens": max(1, min(
                cfg.max_tokens, role.brain.reply_tokens))})
        self.client = rt.client(cfg)

    @property
    def scored(self) -> bool:
        return self.mode == "scored"

    def ask(self, system: str, prompt: str, schema: type[T], purpose: str,
            check: Callable[[T], None] | None = None) -> StructuredResult[T]:
        from agents.llm import ask_structured

        return ask_structured(self.client, [("system", system), ("user", prompt)], schema,
                              agent=self.agent, purpose=purpose,
                              max_repairs=self.role.brain.max_repairs, check=check)

    def score(self, prompt: str, options: Sequence[str], purpose: str) -> list[float]:
        return list(self.client.score(prompt, list(options), agent=self.agent,
                                      purpose=purpose).logprobs)

    def say(self, system: str, prompt: str, purpose: str) -> str:
        """Free text; nothing (and no call) for a base model with ``reply_tokens: 0``."""
        if self.scored and self.role.brain.reply_tokens == 0:
            return ""
        reply = self.client.chat([("system", system), ("user", prompt)], agent=self.agent,
                                 purpose=purpose)
        return reply.text.strip()
