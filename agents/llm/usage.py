"""Charged tokens and cost, per agent and for the run (thread-safe)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["Usage", "UsageMeter"]


@dataclass(frozen=True)
class Usage:
    """Charged tokens and cost (see ``agents.llm.budget``), and how many calls were made."""

    calls: int = 0
    cached_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, *, cached: bool, input_tokens: int, output_tokens: int,
            cost_usd: float) -> Usage:
        return Usage(calls=self.calls + 1, cached_calls=self.cached_calls + int(cached),
                     input_tokens=self.input_tokens + input_tokens,
                     output_tokens=self.output_tokens + output_tokens,
                     cost_usd=self.cost_usd + cost_usd)


class UsageMeter:
    """Totals per agent and for the run; ``total`` and ``per_agent`` are snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = Usage()
        self._agents: dict[str, Usage] = {}

    def add(self, agent: str, *, cached: bool, input_tokens: int, output_tokens: int,
            cost_usd: float) -> None:
        with self._lock:
            self._total = self._total.add(cached=cached, input_tokens=input_tokens,
                                          output_tokens=output_tokens, cost_usd=cost_usd)
            self._agents[agent] = self._agents.get(agent, Usage()).add(
                cached=cached, input_tokens=input_tokens, output_tokens=output_tokens,
                cost_usd=cost_usd)

    @property
    def total(self) -> Usage:
        with self._lock:
            return self._total

    @property
    def per_agent(self) -> dict[str, Usage]:
        with self._lock:
            return dict(self._agents)
