"""What every brain sees and decides; the LLM brain will fill the same shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from agents.profile import UserProfile

__all__ = [
    "Brain",
    "DecisionFailure",
    "InterviewAnswer",
    "ItemDecision",
    "PageDecision",
    "PageObservation",
    "SessionSummary",
]


@dataclass(frozen=True)
class PageObservation:
    """One page of the feed as one user perceives it."""

    profile: UserProfile
    round: int
    page: int  # 1-based
    items: tuple[int, ...]
    memory: tuple[dict[str, Any], ...]  # recent short-term memories, oldest first
    plan: tuple[str, ...] = ()
    recalled: tuple[str, ...] = ()  # long-term memories retrieved for this page, best first


@dataclass(frozen=True)
class ItemDecision:
    item: int
    watch: bool
    rating: int | None
    reason: str
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PageDecision:
    items: tuple[ItemDecision, ...]
    leave: bool
    feeling: str
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionSummary:
    """What the user did in one session, for the exit interview."""

    profile: UserProfile
    round: int
    pages: int
    shown: int
    watched: tuple[int, ...]
    ratings: tuple[int, ...]
    left_early: bool


@dataclass(frozen=True)
class InterviewAnswer:
    satisfaction: int  # 1-10
    reason: str
    inputs: dict[str, Any] = field(default_factory=dict)


class DecisionFailure(Exception):
    """A brain could not produce a valid decision (after its bounded repairs).

    The run records it as a ``decision_failure`` event with the raw output; it is never
    silently dropped.
    """

    def __init__(self, purpose: str, error: str, raw: list[str], attempts: int) -> None:
        super().__init__(f"{purpose}: {error}")
        self.purpose, self.error, self.raw, self.attempts = purpose, error, raw, attempts


class Brain(Protocol):
    """Decides for a user agent. Randomness comes only from the ``rng`` passed in."""

    name: str

    def decide_page(self, obs: PageObservation, rng: np.random.Generator) -> PageDecision: ...

    def interview(
        self, session: SessionSummary, rng: np.random.Generator
    ) -> InterviewAnswer: ...

    def rate_items(
        self, profile: UserProfile, items: tuple[int, ...], rng: np.random.Generator
    ) -> list[int]:
        """Ratings 1-5 the user would give these items after watching them."""
        ...

    def reflect(self, profile: UserProfile, memories: list[str],
                rng: np.random.Generator) -> str:
        """A short reflection on recent memories (written to long-term memory)."""
        ...
