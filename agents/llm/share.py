"""What every client of one model config shares within a run (``agents.llm.service``):
the chat model and its per-loop HTTP clients, the limits (calls in flight, requests and
tokens per minute, one call per cache key at a time) and the budget with the spend it is
checked against. A client built alone gets a share of its own, which is the behaviour
``LLMClient`` always had."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from langchain_core.language_models.chat_models import BaseChatModel

from agents.llm.budget import Budget
from agents.llm.limits import KeyLocks, Slots, TokenBucket
from agents.llm.models import ModelPool
from agents.llm.usage import UsageMeter
from scenarios.schema import LLMConfig

__all__ = ["ModelShare"]


@dataclass
class ModelShare:
    """One model config's shared parts (see the module docstring)."""

    cfg: LLMConfig
    models: ModelPool
    budget: Budget
    spend: UsageMeter  # every sharing client's charged usage: what the budget is checked on
    slots: Slots
    keys: KeyLocks
    rpm: TokenBucket | None
    tpm: TokenBucket | None

    @classmethod
    def build(cls, cfg: LLMConfig, *, chat_model: BaseChatModel | None, cached: bool,
              clock: Callable[[], float]) -> ModelShare:
        """``cached``: calls go through a cache, so each key is charged once."""
        return cls(
            cfg=cfg, models=ModelPool(cfg, chat_model),
            budget=Budget(cfg.budget, charge_once=cached), spend=UsageMeter(),
            slots=Slots(cfg.concurrency), keys=KeyLocks(),
            # Requests per minute: evenly spaced (a bucket of one request), the first at once.
            rpm=(None if cfg.requests_per_minute is None else TokenBucket(
                1, cfg.requests_per_minute / 60.0, clock=clock)),
            tpm=(None if cfg.tokens_per_minute is None
                 else TokenBucket.per_minute(cfg.tokens_per_minute, clock=clock)))
