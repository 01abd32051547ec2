"""What an executor builds a run's agents from: a typed, frozen ``PopulationSpec``.

The runner describes the population once (roles, world, profiles, users, the LLM block,
the run folder, the cache to replay or warm from, ...); every executor turns it into
``agents.population.PopulationFactory`` objects: the default executor one in this
process, the Ray executor one per worker (``PopulationSpec.for_worker`` drops what stays
in the driver, and the spec travels through Ray's object store, so it pickles as long as
what it holds does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agents.group import Emit
from agents.library import EmbedderKind, Library
from agents.population import PopulationFactory
from agents.profile import UserProfile
from scenarios.loader import LoadedRole
from scenarios.schema import LLMConfig
from tools.dataset import Interactions
from tools.world import World

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agents.llm import CallRecord

__all__ = ["LibrarySpec", "PopulationSpec"]


@dataclass(frozen=True, eq=False)
class LibrarySpec:
    """What a ``Library`` is made of (a library builds its indexes lazily behind locks, so
    workers get its parts and build what their agents' tools ask for)."""

    world: World
    history: Interactions
    user_ids: tuple[str, ...]
    user_attrs: tuple[dict[str, str], ...] = ()
    name: str = ""
    kg_paths: tuple[Path, Path] | None = None
    seed: int = 0
    embedder: EmbedderKind = "minilm"

    @classmethod
    def of(cls, lib: Library) -> LibrarySpec:
        return cls(lib.world, lib.history, lib.user_ids, lib.user_attrs, lib.name,
                   lib.kg_paths, lib.seed, lib.embedder)

    def build(self) -> Library:
        return Library(self.world, self.history, self.user_ids, self.user_attrs, self.name,
                       self.kg_paths, self.seed, self.embedder)


@dataclass(frozen=True, eq=False)
class PopulationSpec:
    """A run's population, as ``PopulationFactory`` takes it (without the trace's
    ``emit``, which each executor routes through its own event buffer)."""

    roles: tuple[LoadedRole, ...]
    world: World
    profiles: dict[str, list[UserProfile]]  # per role, indexed by user
    users: list[int]
    history: Interactions
    seed: int
    llm: LLMConfig | None = None  # the scenario's llm block (with --llm applied)
    run_dir: Path | None = None
    replay: str | None = None  # answer every LLM call from this run folder or cache
    chat_model: BaseChatModel | None = None  # tests: a fake chat model
    warm_cache: str | None = None  # record on top of a copy of this run's LLM cache
    max_pages: int = 5
    library: Library | None = None
    library_spec: LibrarySpec | None = None  # a worker's library, built where it runs
    role_worlds: dict[str, World] = field(default_factory=dict)  # a role's own taste space
    keep_prompts: bool = True  # output.keep_prompts
    on_llm_call: Callable[[CallRecord], None] | None = None  # progress: every finished call

    @property
    def uses_llm(self) -> bool:
        return any(r.config.brain.kind == "llm" for r in self.roles)

    def for_worker(self) -> PopulationSpec:
        """What a worker gets: no run folder, cache, progress callback or live library
        (the driver keeps those; the library travels as its parts)."""
        return dataclasses.replace(
            self, run_dir=None, replay=None, warm_cache=None, library=None,
            on_llm_call=None,
            library_spec=LibrarySpec.of(self.library) if self.library is not None
            else self.library_spec)

    def factory(self, emit: Emit) -> PopulationFactory:
        """A population factory over this spec whose agents write their events to ``emit``."""
        library = self.library
        if library is None and self.library_spec is not None:
            library = self.library_spec.build()
        return PopulationFactory(
            roles=self.roles, world=self.world, profiles=self.profiles, users=self.users,
            history=self.history, seed=self.seed, emit=emit, llm=self.llm,
            run_dir=self.run_dir, replay=self.replay, chat_model=self.chat_model,
            warm_cache=self.warm_cache, max_pages=self.max_pages,
            library=library, role_worlds=self.role_worlds,
            keep_prompts=self.keep_prompts, on_llm_call=self.on_llm_call)
