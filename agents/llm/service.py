"""One run's LLM service, shared by its user agents and its recommender agents.

Built once per run (``agents.population.PopulationFactory`` builds it unless given one; the
runner hands the same object to recommender agents through ``AgentEnv.service``), it owns:

- the run's call cache (one SQLite file, recorded and replayed together);
- per model config, one ``ModelShare``: the chat model, the limits (calls in flight,
  requests and tokens per minute, one call per cache key) and the budget, so user agents
  and recommender agents on the same endpoint count against the same limits;
- the clients: one per (model config, caller), because each caller files its calls in the
  trace its own way (``on_call``: user agents per agent, recommender agents under the step
  that asked); each keeps its own usage and call records, so the run's totals add up
  without counting a call twice;
- replay mode for every client, and closing them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from langchain_core.language_models.chat_models import BaseChatModel

from agents.llm.cache import CallCache, open_run_cache
from agents.llm.client import LLMClient
from agents.llm.replies import CallRecord
from agents.llm.share import ModelShare
from scenarios.schema import LLMConfig

__all__ = ["LLMService"]


class LLMService:
    """The run's LLM clients, cache, limits and usage (see the module docstring).

    Args:
        run_dir: The run folder (the cache lives there); None when no model is ever used.
        seed: Seeds every client's retry jitter.
        replay: Answer every call from this run folder's or file's cache (no network).
        warm_cache: Record on top of a copy of this run folder's or file's cache.
        chat_model: Every client talks to this model (tests: ``FakeChatModel``).
        cache: Use this cache instead of opening the run's (the caller closes it).
    """

    def __init__(self, run_dir: Path | None, *, seed: int, replay: str | None = None,
                 warm_cache: str | None = None, chat_model: BaseChatModel | None = None,
                 cache: CallCache | None = None) -> None:
        self.run_dir, self.seed, self.replay = run_dir, seed, replay
        self.warm_cache, self.chat_model = warm_cache, chat_model
        self._cache, self._own_cache = cache, False
        self._shares: dict[str, ModelShare] = {}
        self._clients: dict[tuple[str, str], LLMClient] = {}
        self._lock = threading.RLock()
        self.note = ""  # put first in every system prompt (set_note)

    @property
    def cache(self) -> CallCache:
        """The run's LLM cache (opened on first use)."""
        with self._lock:
            if self._cache is None:
                if self.run_dir is None:
                    raise ValueError("LLM roles need a run folder for their cache")
                self._cache = open_run_cache(self.run_dir, self.replay, self.warm_cache)
                self._own_cache = True
            return self._cache

    def client(self, cfg: LLMConfig, *, caller: str,
               on_call: Callable[[CallRecord], None]) -> LLMClient:
        """The client of ``cfg`` for ``caller`` (e.g. ``"users"``, ``"recommenders"``),
        built on first use; ``on_call`` is the caller's trace sink (the first one given
        for a (cfg, caller) pair is kept)."""
        key = json.dumps(cfg.model_dump(mode="json"), sort_keys=True)
        with self._lock:
            client = self._clients.get((key, caller))
            if client is None:
                share = self._shares.get(key)
                if share is None:
                    share = self._shares[key] = ModelShare.build(
                        cfg, chat_model=self.chat_model, cached=True, clock=time.monotonic)
                client = self._clients[(key, caller)] = LLMClient(
                    cfg, chat_model=self.chat_model, cache=self.cache,
                    replay=self.replay is not None, seed=self.seed, on_call=on_call,
                    share=share, note=self.note)
            return client

    def set_note(self, note: str) -> None:
        """Every client puts ``note`` first in its system prompts (the delimit and
        hierarchy defences, ``tools.text_guard.guard_note``); set before the first call."""
        with self._lock:
            self.note = note
            for client in self._clients.values():
                client.note = note

    def clients(self, caller: str) -> dict[str, LLMClient]:
        """``caller``'s clients built so far, keyed by model config."""
        with self._lock:
            return {k: c for (k, who), c in self._clients.items() if who == caller}

    def all_clients(self) -> list[LLMClient]:
        """Every caller's clients built so far."""
        with self._lock:
            return list(self._clients.values())

    def set_replay(self, on: bool, caller: str | None = None) -> None:
        """Every client (of ``caller``) answers from the cache only (``on``) or records."""
        for client in self._of(caller):
            client.recorder.replay = on

    def usage(self, caller: str | None = None) -> tuple[int, int, float]:
        """(input tokens, output tokens, cost in USD) charged so far (by ``caller``)."""
        totals = [c.usage.total for c in self._of(caller)]
        return (sum(t.input_tokens for t in totals), sum(t.output_tokens for t in totals),
                sum(t.cost_usd for t in totals))

    def _of(self, caller: str | None) -> list[LLMClient]:
        return self.all_clients() if caller is None else list(self.clients(caller).values())

    async def aclose_clients(self) -> None:
        """Close the async HTTP clients opened on the running loop."""
        for client in self.all_clients():
            await client.aclose()

    def close(self) -> None:
        """Close every client's sync HTTP client and the cache this service opened.
        Idempotent."""
        for client in self.all_clients():
            client.close()
        with self._lock:
            if self._own_cache and self._cache is not None:
                self._cache.close()
                self._cache, self._own_cache = None, False
