"""Brains decide for user agents: ``utility`` (numeric) now, ``llm`` later."""

from agents.brains.base import (
    Brain,
    InterviewAnswer,
    ItemDecision,
    PageDecision,
    PageObservation,
    SessionSummary,
)
from agents.brains.utility import UtilityBrain, World

__all__ = [
    "Brain",
    "InterviewAnswer",
    "ItemDecision",
    "PageDecision",
    "PageObservation",
    "SessionSummary",
    "UtilityBrain",
    "World",
]
