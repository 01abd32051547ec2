"""Wiring for a role's agents: which model (--llm), which cache (record or --replay), which
brain and which long-term memory a role gets. Heavy imports happen only when used."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.brains.base import Brain
from agents.brains.utility import UtilityBrain, World
from scenarios.schema import LLMConfig, LongTermMemoryConfig, RoleConfig

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agents.llm import CallCache, CallRecord, LLMClient
    from memory.long_term import LongTermStore

__all__ = ["LLM_FLAG_HELP", "make_brain", "make_client", "make_long_term", "parse_llm_flag"]

LLM_FLAG_HELP = (
    "local (in-process Gemma 3 270M), openai (the scenario's or OPENAI_BASE_URL's model) "
    "or openai:MODEL"
)


def parse_llm_flag(spec: str, base: LLMConfig | None) -> LLMConfig:
    """``--llm`` on top of the scenario's ``llm:`` block (or the defaults)."""
    cfg = base or LLMConfig()
    kind, _, model = spec.partition(":")
    if kind == "local":
        return cfg.model_copy(update={"backend": "local", "model": model or "gemma-3-270m"})
    if kind == "openai":
        update: dict[str, Any] = {"backend": "openai"}
        if model:
            update["model"] = model
        return cfg.model_copy(update=update)
    raise ValueError(f"--llm: expected {LLM_FLAG_HELP}; got {spec!r}")


def _copy_cache(src: Path, dest: Path) -> None:
    # The SQLite backup API copies a consistent snapshot even if the source has a WAL.
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as s, sqlite3.connect(dest) as d:
        s.backup(d)


def make_cache(run_dir: Path, replay_from: str | None,
               warm_from: str | None = None) -> CallCache:
    """The run's LLM cache: recording into ``run_dir``, or a copy of another run's to
    replay; ``warm_from`` records on top of a copy of another run's cache (calls it
    already holds are not asked again)."""
    from agents.llm import CACHE_FILENAME, CallCache, resolve_cache_path

    dest = run_dir / CACHE_FILENAME
    if warm_from is not None and replay_from is None:
        src = resolve_cache_path(warm_from)
        if src.is_file():
            _copy_cache(src, dest)
    if replay_from is not None:
        src = resolve_cache_path(replay_from)
        if not src.is_file():
            raise FileNotFoundError(f"--replay: no LLM cache at {src}")
        _copy_cache(src, dest)
        return CallCache(dest, must_exist=True)
    return CallCache(dest)


def make_client(cfg: LLMConfig, run_dir: Path, *, replay_from: str | None, seed: int,
                on_call: Callable[[CallRecord], None],
                chat_model: BaseChatModel | None = None,
                cache: CallCache | None = None) -> LLMClient:
    """A client recording into ``run_dir``, or replaying a copy of another run's cache
    (pass ``cache`` to share one cache between several clients)."""
    from agents.llm import LLMClient

    cache = cache if cache is not None else make_cache(run_dir, replay_from)
    return LLMClient(cfg, cache=cache, replay=replay_from is not None, seed=seed,
                     on_call=on_call, chat_model=chat_model)


def make_brain(role: RoleConfig, world: World, *, client: LLMClient | None,
               max_pages: int, backend: str | None) -> Brain:
    """The brain a role asks for."""
    if role.brain.kind == "utility":
        return UtilityBrain(world, role.brain.params)
    from agents.brains.llm import LLMBrain

    if client is None:
        raise ValueError("an llm brain needs an LLM client")
    mode = role.brain.decision_mode
    if mode == "auto":
        mode = "scored" if backend == "local" else "structured"
    return LLMBrain(world, role.brain, client, role=role.name, instructions=role.instructions,
                    max_pages=max_pages, mode=mode)


def make_long_term(cfg: LongTermMemoryConfig, path: Path | None, collection: str,
                   llm: LLMConfig | None) -> LongTermStore:
    """A chromadb-backed store for one arm (``path`` None: ephemeral)."""
    from memory.embedders import make_embedder
    from memory.long_term import LongTermStore

    openai_fn = None
    if cfg.embedder == "openai":
        from agents.llm import make_embedding_fn

        openai_fn = make_embedding_fn(llm or LLMConfig(), cfg.embedding_model)
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
    return LongTermStore(path, make_embedder(cfg.embedder, openai_fn=openai_fn),
                         collection=collection)
