"""What a brain can do, one typed protocol per capability.

An interaction kind (agents.kinds) names the capabilities its observations need; a role
whose brain class lacks one is rejected when the scenario is prepared, before any work
(``agents.kinds.capability_problem``). The agent graph awaits them: numeric brains answer
at once, LLM brains await their client. Each protocol is ``runtime_checkable``, so
``issubclass(BrainClass, PageDecider)`` checks a brain class without building it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from agents.brains.base import (
    ConversationView,
    InterviewAnswer,
    PageDecision,
    PageObservation,
    Said,
    SessionSummary,
    TurnVerdict,
)
from agents.profile import UserProfile

__all__ = [
    "CAPABILITIES",
    "ConversationSeeker",
    "Interviewee",
    "PageDecider",
    "Rater",
    "Reflector",
    "Thinker",
    "capability_methods",
]


@runtime_checkable
class PageDecider(Protocol):
    """Watch or skip each item of a page, rate what is watched, stay or leave."""

    async def adecide_page(self, obs: PageObservation,
                           rng: np.random.Generator) -> PageDecision: ...


@runtime_checkable
class Interviewee(Protocol):
    """How satisfied was the user with a session (1-10), and why."""

    async def ainterview(self, session: SessionSummary,
                         rng: np.random.Generator) -> InterviewAnswer: ...


@runtime_checkable
class ConversationSeeker(Protocol):
    """Describe a hidden target without naming it; judge a turn's recommendations."""

    async def adescribe(self, view: ConversationView, rng: np.random.Generator) -> Said: ...

    async def ajudge(self, view: ConversationView,
                     rng: np.random.Generator) -> TurnVerdict: ...


@runtime_checkable
class Reflector(Protocol):
    """A short reflection on recent memories (written to long-term memory)."""

    async def areflect(self, profile: UserProfile, memories: list[str],
                       rng: np.random.Generator) -> str: ...


@runtime_checkable
class Thinker(Protocol):
    """Free text for a planner step (brains with a language model)."""

    async def athink(self, agent: str, purpose: str, prompt: str) -> str: ...


@runtime_checkable
class Rater(Protocol):
    """Ratings 1-5 the user would give items after watching them (alignment checks call it
    outside the agent graph, synchronously)."""

    def rate_items(self, profile: UserProfile, items: tuple[int, ...],
                   rng: np.random.Generator) -> list[int]: ...


CAPABILITIES: tuple[type, ...] = (PageDecider, Interviewee, ConversationSeeker, Reflector,
                                  Thinker, Rater)


def capability_methods(cap: type) -> list[str]:
    """The method names a capability protocol asks for (for error messages)."""
    return sorted(n for n, v in vars(cap).items() if callable(v) and not n.startswith("_"))
