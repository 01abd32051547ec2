"""The run budget: what a call costs, whether it is charged, and when the run must stop.

Charging: with a cache, each distinct call (cache key) is charged once per client (run), the
first time it is asked, whether it was answered live or from the cache; repeats are free.
Recording and replaying the same run therefore charge the same calls and stop at the same
call, and a replayed trace equals the original. Without a cache every live call is charged.
"""

from __future__ import annotations

import threading

from agents.llm.errors import BudgetExceededError
from agents.llm.usage import Usage
from scenarios.schema import BudgetConfig

__all__ = ["Budget"]


class Budget:
    """Prices and limits of ``BudgetConfig``, and the set of keys already charged.

    Args:
        cfg: Prices per million tokens and the optional limits.
        charge_once: Charge each key once (runs with a cache); else charge every call.
    """

    def __init__(self, cfg: BudgetConfig, *, charge_once: bool) -> None:
        self.cfg = cfg
        self.charge_once = charge_once
        self._charged: set[str] = set()
        self._lock = threading.Lock()

    def cost_of(self, input_tokens: int, output_tokens: int) -> float:
        b = self.cfg
        return (input_tokens * b.input_price_per_mtok
                + output_tokens * b.output_price_per_mtok) / 1e6

    def will_charge(self, key: str) -> bool:
        if not self.charge_once:
            return True
        with self._lock:
            return key not in self._charged

    def mark_charged(self, key: str) -> None:
        if self.charge_once:
            with self._lock:
                self._charged.add(key)

    def check(self, total: Usage) -> None:
        """Raise BudgetExceededError when ``total`` has reached a limit."""
        b = self.cfg
        if b.max_tokens is not None and total.total_tokens >= b.max_tokens:
            raise BudgetExceededError(
                f"run budget reached: {total.total_tokens:,} tokens used of max_tokens "
                f"{b.max_tokens:,}", limit="max_tokens")
        if b.max_cost_usd is not None and total.cost_usd >= b.max_cost_usd:
            raise BudgetExceededError(
                f"run budget reached: ${total.cost_usd:.4f} spent of max_cost_usd "
                f"${b.max_cost_usd:.4f}", limit="max_cost_usd")
