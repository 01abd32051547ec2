"""What every brain sees and decides; the LLM brain will fill the same shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from agents.profile import UserProfile

__all__ = [
    "Brain",
    "ConversationView",
    "DecisionFailure",
    "InterviewAnswer",
    "ItemDecision",
    "PageDecision",
    "PageObservation",
    "Said",
    "SessionSummary",
    "TurnVerdict",
]


@dataclass(frozen=True)
class PageObservation:
    """One page of the feed as one user perceives it."""

    profile: UserProfile
    round: int
    page: int  # 1-based
    items: tuple[int, ...]
    memory: tuple[dict[str, Any], ...]  # recent short-term memories, oldest first
    plan: tuple[str, ...] = ()  # the planner's path, e.g. ("summarise_tastes", "decide")
    recalled: tuple[str, ...] = ()  # long-term memories retrieved for this page, best first
    guidance: str = ""  # what the planner concluded, for the brain's prompt ({plan})
    shortlist: tuple[int, ...] | None = None  # items the plan settled on (None: no view)
    # A social world: per item, the strongest tie it was heard from (0: not heard), and
    # the world's weight of that pull (empty / 0: no social term, as in the feed).
    heard_ties: tuple[float, ...] = ()
    social_weight: float = 0.0


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


@dataclass(frozen=True)
class ConversationView:
    """A conversation as the user agent sees it: its hidden target and the turns so far."""

    profile: UserProfile
    round: int
    turn: int
    target: int
    said: tuple[str, ...] = ()
    recommended: tuple[int, ...] = ()  # this turn's recommendations (empty when opening)
    reply: str = ""  # what the recommender said with them (recommender agents)
    patience: int = 3  # turns this user tries before giving up
    noise: float = 0.2  # chance of leaving out or confusing a fact (utility brain)
    memory: tuple[dict[str, Any], ...] = ()
    guidance: str = ""


@dataclass(frozen=True)
class Said:
    text: str
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TurnVerdict:
    accept: int | None  # the accepted item, or None
    give_up: bool
    feedback: str
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

    def describe(self, view: ConversationView, rng: np.random.Generator) -> Said:
        """Say what you are looking for (the target) without naming it."""
        ...

    def judge(self, view: ConversationView, rng: np.random.Generator) -> TurnVerdict:
        """Accept one of this turn's recommendations, or reject with feedback or give up."""
        ...
