"""Record / replay policy over the call cache: answer from it, record into it, and in replay
mode refuse to call a model at all."""

from __future__ import annotations

from typing import Any, Literal

from agents.llm.cache import CachedCall, CallCache, CallKind
from agents.llm.errors import ReplayMissError

__all__ = ["Recorder"]


class Recorder:
    """Looks calls up in ``cache`` and records live answers into it.

    Args:
        cache: The run's call cache, or None (every call is live, nothing is recorded).
        replay: Answer only from ``cache``; a miss is ``ReplayMissError``.
    """

    def __init__(self, cache: CallCache | None, *, replay: bool) -> None:
        if replay and cache is None:
            raise ValueError("replay needs a cache to replay from")
        self.cache, self.replay = cache, replay

    @property
    def mode(self) -> Literal["record", "replay", "off"]:
        """"record" (write-through cache), "replay" (cache only) or "off" (no cache)."""
        return "replay" if self.replay else ("record" if self.cache is not None else "off")

    def lookup(self, key: str) -> CachedCall | None:
        return self.cache.get(key) if self.cache is not None else None

    def has(self, key: str) -> bool:
        return self.lookup(key) is not None

    def must_call(self, key: str, *, agent: str, purpose: str) -> None:
        """A live call is about to be made: refuse it in replay."""
        if self.replay:
            raise ReplayMissError(
                f"replay: no recorded LLM call for agent {agent!r} ({purpose}), key "
                f"{key[:12]}; the scenario, prompts or model differ from the recording",
                agent=agent, purpose=purpose, key=key)

    def record(self, key: str, *, kind: CallKind, backend: str, model: str,
               request: dict[str, Any], input_tokens: int, output_tokens: int,
               **answer: Any) -> None:
        if self.cache is not None:
            self.cache.put(key, kind=kind, backend=backend, model=model, request=request,
                           input_tokens=input_tokens, output_tokens=output_tokens, **answer)
