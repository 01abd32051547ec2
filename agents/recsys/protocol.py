"""What a recommender agent is asked and what it answers: typed, JSON-able, batched.

Items and users are dataset indices (ints) inside the run; traces show catalogue ids.
Every request carries ``now``, the simulation clock: tools an agent calls must never
reveal what the user did after it (``None``: the end of the known history). ``where`` is
the trace location (arm, round, user, page or turn, and ``base``, the step's trace-id
prefix) under which the agent writes its own events; offline tasks use a task location.

Batches keep LangGraph's and the LLM layer's per-call cost per step, as for user agents:
an implementation may answer a batch concurrently but returns answers in request order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ExplainRequest",
    "Explanation",
    "RankRequest",
    "Ranking",
    "RateRequest",
    "Rating",
    "RecommenderAgent",
]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RankRequest(_Message):
    """Order ``candidates`` for ``user``; return at most ``k``."""

    user: int
    candidates: list[int] = Field(min_length=1)
    k: int = Field(ge=1)
    now: int | None = None
    context: str = ""  # the conversation so far (conversation environment), else empty
    where: dict[str, Any] = {}


class Ranking(_Message):
    """Best first; distinct items, each one of the request's candidates."""

    items: list[int]
    explanations: dict[int, str] = {}  # item -> why (explanation output), may be empty
    reply: str = ""  # what the agent says to the user (chat reply output), may be empty
    failure: str | None = None  # set when the agent fell back (items = candidate order)


class RateRequest(_Message):
    user: int
    item: int
    now: int | None = None
    where: dict[str, Any] = {}


class Rating(_Message):
    value: float = Field(ge=1, le=5)
    explanation: str = ""
    failure: str | None = None


class ExplainRequest(_Message):
    user: int
    item: int
    now: int | None = None
    where: dict[str, Any] = {}


class Explanation(_Message):
    text: str
    failure: str | None = None


@runtime_checkable
class RecommenderAgent(Protocol):
    """Anything that ranks, rates and explains: a classic model adapted, an LLM role, a
    team. ``name`` labels trace events and result tables."""

    name: str

    def llm_usage(self) -> tuple[int, int, float]:
        """Input tokens, output tokens and cost (USD) spent so far (zeros without an LLM)."""
        ...

    def close(self) -> None:
        """Release clients, caches and stores."""
        ...

    def rank(self, requests: Sequence[RankRequest]) -> list[Ranking]: ...

    def rate(self, requests: Sequence[RateRequest]) -> list[Rating]: ...

    def explain(self, requests: Sequence[ExplainRequest]) -> list[Explanation]: ...
