"""Brains decide for user agents: ``utility`` (numeric) and ``llm``; what each can do is
a set of typed capabilities (agents.brains.capabilities)."""

from agents.brains.base import (
    Brain,
    InterviewAnswer,
    ItemDecision,
    PageDecision,
    PageObservation,
    SessionSummary,
)
from agents.brains.capabilities import (
    ConversationSeeker,
    Interviewee,
    PageDecider,
    Rater,
    Reflector,
    Thinker,
)
from agents.brains.utility import UtilityBrain, World

__all__ = [
    "Brain",
    "ConversationSeeker",
    "InterviewAnswer",
    "Interviewee",
    "ItemDecision",
    "PageDecider",
    "PageDecision",
    "PageObservation",
    "Rater",
    "Reflector",
    "SessionSummary",
    "Thinker",
    "UtilityBrain",
    "World",
]
